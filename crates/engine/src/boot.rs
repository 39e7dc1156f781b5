//! `berth system boot`: what comes back after a reboot. Berth has no daemon to restore
//! containers when it starts, so a boot unit (contrib/berth-boot.service) runs this once.
//!
//! The choice is docker's at daemon start (moby daemon.restore: `ShouldRestart()` of the
//! restart manager, for containers started before), with one difference noted below:
//!
//! - `always`: restarted, even when the user stopped it (docker's documented rule: a
//!   manually stopped `always` container comes back when the daemon restarts);
//! - `unless-stopped`: restarted unless its last stop was the user's (`stoppedByUser`);
//! - `on-failure[:N]`: restarted when its last run failed (a container that was running at
//!   the reboot died unseen: exit 255, docker's code for a lost exit) and fewer than N
//!   restarts were made; not when the user stopped it (docker would, since a stop by
//!   signal exits non-zero; podman does not);
//! - `no`: never.
//!
//! A `--rm` container whose monitor died with it (the reboot) is removed, as docker
//! removes auto-remove containers at restore.

use crate::options::RestartPolicy;
use crate::record::{ContainerConfig, ContainerState, Status};

/// What boot does with one container, given its (corrected) state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Start,
    Remove,
    Leave,
}

pub fn action(c: &ContainerConfig, s: &ContainerState) -> Action {
    // Only containers that ran and are stopped now; never one created but never started.
    if s.status != Status::Exited || s.started_at.is_empty() {
        return Action::Leave;
    }
    if c.options.auto_remove {
        return Action::Remove;
    }
    let start = match c.options.restart {
        RestartPolicy::No => false,
        RestartPolicy::Always => true,
        RestartPolicy::UnlessStopped => !s.stopped_by_user,
        RestartPolicy::OnFailure(max) => {
            !s.stopped_by_user && s.exit_code != 0 && (max == 0 || s.restart_count < max)
        }
    };
    if start {
        Action::Start
    } else {
        Action::Leave
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::CreateOptions;

    fn cfg(restart: RestartPolicy, auto_remove: bool) -> ContainerConfig {
        ContainerConfig {
            stop_signal: 15,
            ..ContainerConfig::bare(
                &"a".repeat(64),
                "c",
                CreateOptions {
                    restart,
                    auto_remove,
                    ..Default::default()
                },
            )
        }
    }

    fn exited(code: i32, by_user: bool, restarts: u32) -> ContainerState {
        ContainerState {
            status: Status::Exited,
            exit_code: code,
            stopped_by_user: by_user,
            restart_count: restarts,
            started_at: "2026-01-01T00:00:00.000000000Z".into(),
            ..Default::default()
        }
    }

    #[test]
    fn docker_rules_at_daemon_start() {
        use Action::*;
        use RestartPolicy as P;
        let lost = exited(255, false, 0);
        assert_eq!(action(&cfg(P::Always, false), &lost), Start);
        assert_eq!(action(&cfg(P::Always, false), &exited(137, true, 0)), Start);
        assert_eq!(action(&cfg(P::UnlessStopped, false), &lost), Start);
        assert_eq!(
            action(&cfg(P::UnlessStopped, false), &exited(0, true, 0)),
            Leave
        );
        assert_eq!(action(&cfg(P::OnFailure(0), false), &lost), Start);
        assert_eq!(
            action(&cfg(P::OnFailure(3), false), &exited(1, false, 2)),
            Start
        );
        assert_eq!(
            action(&cfg(P::OnFailure(3), false), &exited(1, false, 3)),
            Leave
        );
        assert_eq!(
            action(&cfg(P::OnFailure(0), false), &exited(0, false, 0)),
            Leave
        );
        assert_eq!(
            action(&cfg(P::OnFailure(0), false), &exited(143, true, 0)),
            Leave
        );
        assert_eq!(action(&cfg(P::No, false), &lost), Leave);
        assert_eq!(action(&cfg(P::No, true), &lost), Remove);
        // Never started, or running: left alone.
        let created = ContainerState::default();
        assert_eq!(action(&cfg(P::Always, false), &created), Leave);
        let running = ContainerState {
            status: Status::Running,
            ..lost.clone()
        };
        assert_eq!(action(&cfg(P::Always, false), &running), Leave);
        assert_eq!(action(&cfg(P::No, true), &created), Leave);
    }
}
