//! The `riser-gateway` binary: config layers and clear start-up errors.

use std::process::Command;

fn gateway() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_riser-gateway"));
    // Only this test's variables reach the config's environment layer.
    for (key, _) in std::env::vars() {
        if key.starts_with("RISER_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

#[test]
fn environment_overrides_the_file_which_overrides_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    std::fs::write(
        &path,
        "id = \"gw-1\"\npoll_interval_ms = 2000\n[mqtt]\nhost = \"file.example\"\n",
    )
    .unwrap();
    let out = gateway()
        .args(["--config", path.to_str().unwrap(), "check-config"])
        .env("RISER_GATEWAY_MQTT__HOST", "env.example")
        .env("RISER_GATEWAY_MQTT__PASSWORD", "s3cret")
        .env("RISER_GATEWAY_MQTT__USERNAME", "gw-1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown = String::from_utf8(out.stdout).unwrap();
    assert!(shown.contains("host = \"env.example\""), "{shown}");
    assert!(shown.contains("poll_interval_ms = 2000"), "{shown}");
    assert!(shown.contains("port = 1883"), "default kept: {shown}");
    assert!(!shown.contains("s3cret"), "password printed: {shown}");
}

#[test]
fn a_bad_config_stops_at_start_naming_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, "id = \"gw-1\"\n[mqtt]\nport = \"eighteen\"\n").unwrap();
    let out = gateway()
        .args(["--config", path.to_str().unwrap(), "check-config"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("gateway.toml") && err.contains("port"),
        "{err}"
    );
}
