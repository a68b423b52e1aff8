//! The `incubase` command: serve (default), migrate, export-schema, seed-demo.
use anyhow::Context;
use api::config::Settings;
use api::startup::{Application, build_state};
use clap::{Parser, Subcommand};
use migration::{Migrator, MigratorTrait};

#[derive(Parser)]
#[command(name = "incubase", version, about = "GraphQL API of the social-governance innovation service base")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Apply or inspect database migrations.
    Migrate {
        #[command(subcommand)]
        action: MigrateAction,
    },
    /// Print the GraphQL SDL (what schema.graphql holds).
    ExportSchema {
        /// Write to this file instead of standard output.
        #[arg(long)]
        output: Option<std::path::PathBuf>,
    },
    /// Load the demo base: organizations with their history and demo accounts. Skips when
    /// data exists.
    SeedDemo,
    /// Erase identity document numbers of registrations for events that ended longer ago than
    /// INCUBASE_ID_DOC_RETENTION_DAYS (default 30). Run it daily (cron or a systemd timer).
    PurgeIdentityDocuments,
    /// Create the first admin account (or make an existing account an admin). The password
    /// comes from INCUBASE_ADMIN_PASSWORD or, if unset, the first line of standard input.
    CreateAdmin {
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "Administrator")]
        name: String,
    },
}

#[derive(Subcommand)]
enum MigrateAction {
    /// Apply all pending migrations.
    Up,
    /// Roll back the last migration (or --steps N).
    Down {
        #[arg(long, default_value_t = 1)]
        steps: u32,
    },
    /// List migrations and whether they are applied.
    Status,
}

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        eprintln!("incubase: {e:#}");
        std::process::exit(1);
    }
}

/// The admin password, never from the command line (it would show in `ps` and shell history).
fn read_admin_password() -> anyhow::Result<String> {
    if let Ok(password) = std::env::var("INCUBASE_ADMIN_PASSWORD") {
        return Ok(password);
    }
    eprintln!("password for the admin account (input is read from standard input):");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).context("reading the password")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Command::ExportSchema { output }) = &cli.command {
        let sdl = api::graphql::sdl();
        match output {
            Some(path) => std::fs::write(path, sdl).with_context(|| format!("writing {}", path.display()))?,
            None => print!("{sdl}"),
        }
        return Ok(());
    }
    let settings = Settings::from_env()?;
    api::telemetry::init(&settings.log_format);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            tracing::info!(settings = ?settings, "starting");
            let app = Application::build(settings).await?;
            let addr = app.local_addr();
            let scheme = app.scheme();
            tracing::info!("incubase listening on {scheme}://{addr} (GraphiQL at {scheme}://{addr}/)");
            println!("incubase listening on {scheme}://{addr} — GraphiQL at {scheme}://{addr}/");
            app.run_until_stopped().await?;
        }
        Command::Migrate { action } => {
            let state = build_state(settings).await?;
            match action {
                MigrateAction::Up => {
                    Migrator::up(&state.db, None).await?;
                    println!("migrations applied");
                }
                MigrateAction::Down { steps } => {
                    Migrator::down(&state.db, Some(steps)).await?;
                    println!("rolled back {steps} migration(s)");
                }
                MigrateAction::Status => {
                    for m in Migrator::get_migration_with_status(&state.db).await? {
                        println!("{:?}\t{}", m.status(), m.name());
                    }
                }
            }
        }
        Command::SeedDemo => {
            let state = build_state(settings).await?;
            Migrator::up(&state.db, None).await?;
            let created = api::seed::demo(state.ctx()).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            if created == 0 {
                println!("the database already holds organizations; nothing seeded");
            } else {
                println!("seeded {created} organizations");
            }
        }
        Command::PurgeIdentityDocuments => {
            let state = build_state(settings).await?;
            let retention = state.settings.identity_document_retention;
            let actor = api::events::Actor::cli("purge-identity-documents");
            let purged =
                api::service::event::purge_identity_documents(state.ctx(), &actor, retention, api::service::now())
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("purged {purged} identity document(s)");
        }
        Command::CreateAdmin { email, name } => {
            let state = build_state(settings).await?;
            Migrator::up(&state.db, None).await?;
            let outcome = api::service::identity::create_admin(state.ctx(), &email, &name, read_admin_password()?)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{outcome}");
        }
        Command::ExportSchema { .. } => {}
    }
    Ok(())
}
