//! The subcommands other than `serve`: config check, migrations, version, completions.

use std::io::Write;

use anyhow::Context;
use clap::CommandFactory;
use hearth_config::Sources;

use crate::cli::{Cli, MigrateCommand};

pub fn config_check(sources: &Sources) -> anyhow::Result<()> {
    let loaded = crate::config::load(sources)?;
    let mut out = std::io::stdout().lock();
    match &sources.file {
        Some(path) => writeln!(out, "# config file: {}", path.display())?,
        None => writeln!(
            out,
            "# no config file; defaults, environment and flags only"
        )?,
    }
    writeln!(out, "# configuration is valid\n")?;
    write!(out, "{}", loaded.render_masked())?;
    Ok(())
}

pub fn migrate(sources: &Sources, command: &MigrateCommand) -> anyhow::Result<()> {
    let loaded = crate::config::load(sources)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let store = crate::serve::open_store(&loaded.config, false).await?;
        let mut out = std::io::stdout().lock();
        match command {
            MigrateCommand::Status => {
                writeln!(out, "database: {}", store.path().display())?;
                for state in store.migration_status().await? {
                    let mark = if state.applied { "applied" } else { "pending" };
                    writeln!(out, "{:>4}  {mark:<8} {}", state.version, state.description)?;
                }
            }
            MigrateCommand::Up { to } => {
                let applied = store.migrate_up(*to).await?;
                if applied.is_empty() {
                    writeln!(out, "nothing to apply; the schema is up to date")?;
                }
                for version in applied {
                    writeln!(out, "applied {version}")?;
                }
            }
            MigrateCommand::Down { to } => {
                let reverted = store.migrate_down(*to).await?;
                if reverted.is_empty() {
                    writeln!(out, "nothing to revert")?;
                }
                for version in reverted {
                    writeln!(out, "reverted {version}")?;
                }
            }
        }
        store.close().await;
        Ok(())
    })
}

pub fn version() {
    println!("hearth {}", env!("CARGO_PKG_VERSION"));
    println!(
        "cpu kernels: {}",
        hearth_inference::cpu_features().join(" ")
    );
}

pub fn completions(shell: clap_complete::Shell) {
    clap_complete::generate(shell, &mut Cli::command(), "hearth", &mut std::io::stdout());
}
