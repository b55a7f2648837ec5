//! `asterope serve`: the server's configuration from the command line, the listener, and the
//! signals that stop it.

use asterope::{Access, Error, Result, ServerConfig, Tokens};

use crate::{open_database, output, Cli, Command};

pub(crate) async fn serve(cli: Cli) -> Result<()> {
    let Command::Serve {
        listen,
        tls_cert,
        tls_key,
        auth_tokens,
        read_tokens,
        tokens_file,
        cors_origins,
    } = &cli.command
    else {
        return Ok(());
    };
    let mut config = ServerConfig {
        cors: asterope_network::Cors::new(cors_origins)?,
        ..ServerConfig::default()
    };
    if let Some(path) = tokens_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        config.tokens = Tokens::parse_file(&text)?;
    }
    for token in auth_tokens {
        config.tokens.add(token, Access::ReadWrite);
    }
    for token in read_tokens {
        config.tokens.add(token, Access::ReadOnly);
    }
    if let (Some(cert), Some(key)) = (tls_cert, tls_key) {
        config.tls = Some(asterope_network::load_tls_config(cert, key)?);
    }
    let db = open_database(&cli)?;
    let listener = tokio::net::TcpListener::bind(listen.as_str())
        .await
        .map_err(|e| Error::io(format!("listening on {listen}"), e))?;
    let address = listener
        .local_addr()
        .map_err(|e| Error::io("reading the listening address", e))?;
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    output::print_error(format_args!(
        "asterope: serving {} on {scheme}://{address} (HTTP/2 and HTTP/1.1)",
        cli.data.display()
    ));
    asterope::serve(listener, std::sync::Arc::new(db), config, shutdown_signal()).await
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    output::print_error("asterope: shutting down");
}
