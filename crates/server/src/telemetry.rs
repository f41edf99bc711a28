//! Logging: `SLUICE_LOG` is a filter (`info`, `sluice=debug`) or `json`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Log lines never carry credentials: no
/// code path logs connector secrets, API keys or the database URL.
pub fn init(setting: &str) {
    let json = setting.split(',').any(|part| part.trim() == "json");
    let filter_text: Vec<&str> = setting
        .split(',')
        .map(str::trim)
        .filter(|p| *p != "json" && !p.is_empty())
        .collect();
    let filter_text = if filter_text.is_empty() {
        "info".to_owned()
    } else {
        filter_text.join(",")
    };
    let filter = EnvFilter::try_new(&filter_text).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let result = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    if let Err(e) = result {
        eprintln!("sluice: logging already initialised: {e}");
    }
}
