//! Loading seccomp filters (filled in by the seccomp work).
