//! `run`/`create` flags as parsed (LowArgs), resolved once into CreateOptions (HiArgs).

use berth_engine::options::CreateOptions;

#[derive(clap::Args, Debug, Clone, Default)]
pub struct RunFlags {
    /// Assign a name to the container
    #[arg(long)]
    pub name: Option<String>,
}

impl RunFlags {
    /// Resolves the flags, the image and the command after it into options.
    pub fn resolve(self, image: String, cmd: Vec<String>) -> anyhow::Result<CreateOptions> {
        Ok(CreateOptions {
            image,
            name: self.name,
            cmd: if cmd.is_empty() { None } else { Some(cmd) },
            ..Default::default()
        })
    }
}
