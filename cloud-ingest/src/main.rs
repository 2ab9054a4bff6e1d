use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use riser_ingest::{Config, Ingest, Registry};
use tokio_util::sync::CancellationToken;

/// Riser cloud-ingest: consumes gateway messages (MQTT), stores them
/// (SQLite by default, PostgreSQL with `database_url = "postgres://…"`;
/// telemetry also to InfluxDB 2 with `[influx]`), judges every building's
/// fire water against GB 50974 and serves the API and dashboard.
///
/// With no `mqtt.broker` configured it runs an embedded MQTT broker on
/// `mqtt.embedded_listen` (default 127.0.0.1:11883).
///
/// Configuration: built-in defaults, then the TOML file, then environment
/// variables `RISER_INGEST_<KEY>` (`__` between nested keys, e.g.
/// `RISER_INGEST_HTTP__LISTEN`). Logs go to stderr; set `RUST_LOG` to filter.
///
/// The dashboard and API need a login: make the first admin with
/// `riser-ingest user add admin --role admin` (the password is read from
/// standard input).
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// Config file (TOML).
    #[arg(short, long, default_value = "/etc/riser/ingest.toml", global = true)]
    config: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Manage the people who sign in to the dashboard and API (in the
    /// configured store).
    #[command(subcommand)]
    User(UserCommand),
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user; the password is read from standard input (one line,
    /// at least 10 characters), or generated and printed with `--generate`.
    Add {
        username: String,
        /// admin, fire_rescue, contractor or installer.
        #[arg(long)]
        role: String,
        /// fire_rescue and installer: a region `district[/town[/community]]`;
        /// contractor: its name as the registry gives it.
        #[arg(long)]
        scope: Option<String>,
        /// The name shown in the dashboard and in items' trails.
        #[arg(long)]
        display_name: Option<String>,
        /// Make a random password and print it.
        #[arg(long)]
        generate: bool,
    },
    /// Set a new password (read from standard input); the user's sessions end.
    Passwd { username: String },
    /// Shut a user out: sessions end, API tokens stop working.
    Disable { username: String },
    /// Let a disabled user in again.
    Enable { username: String },
    /// List users.
    List,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,rumqttd=off".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let config = Config::load(Some(&cli.config))
        .with_context(|| format!("config file {}", cli.config.display()))?;
    if let Some(Command::User(command)) = cli.command {
        return user(&config, command).await;
    }
    let registry = Registry::load(&config.registry)?;
    let shutdown = CancellationToken::new();
    let ingest = Ingest::start(config, registry, shutdown.clone()).await?;
    println!("Riser dashboard: http://{}/", ingest.http_addr);
    stop_signal().await?;
    shutdown.cancel();
    ingest.join().await;
    Ok(())
}

/// Ctrl-C, or SIGTERM from a service manager.
async fn stop_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! { r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C"), _ = term.recv() => Ok(()) }
}

/// One password line from standard input.
fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    anyhow::ensure!(!password.is_empty(), "no password on standard input");
    Ok(password)
}

async fn user(config: &Config, command: UserCommand) -> anyhow::Result<()> {
    use riser_ingest::auth::{self, NewUser, Role};
    let store = riser_ingest::open_store(config).await?;
    let now = time::OffsetDateTime::now_utc();
    match command {
        UserCommand::Add {
            username,
            role,
            scope,
            display_name,
            generate,
        } => {
            let role = Role::parse(&role).with_context(|| {
                format!("role `{role}`: admin, fire_rescue, contractor or installer")
            })?;
            let password = if generate {
                auth::generate_password()
            } else {
                read_password()?
            };
            let user = auth::add_user(
                &store,
                &NewUser {
                    username,
                    display_name,
                    password: password.clone(),
                    role,
                    scope,
                },
                now,
            )
            .await?;
            println!(
                "added {} ({}{})",
                user.username,
                user.role,
                user.scope.map(|s| format!(", {s}")).unwrap_or_default()
            );
            if generate {
                println!("password: {password}");
            }
        }
        UserCommand::Passwd { username } => {
            auth::set_password(&store, &username, &read_password()?).await?;
            println!("password of {username} set; its sessions ended");
        }
        UserCommand::Disable { username } => {
            auth::set_disabled(&store, &username, true, now).await?;
            println!("{username} disabled");
        }
        UserCommand::Enable { username } => {
            auth::set_disabled(&store, &username, false, now).await?;
            println!("{username} enabled");
        }
        UserCommand::List => {
            for u in auth::users(&store).await? {
                println!(
                    "{}\t{}\t{}\t{}{}",
                    u.username,
                    u.role,
                    u.scope.as_deref().unwrap_or("-"),
                    u.display_name,
                    if u.disabled { "\tdisabled" } else { "" }
                );
            }
        }
    }
    store.close().await;
    Ok(())
}
