use super::*;

fn write(dir: &tempfile::TempDir, text: &str) -> PathBuf {
    let path = dir.path().join("gateway.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn file_values_override_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        r#"
        id = "gw-LP-001"
        poll_interval_ms = 2000
        [mqtt]
        port = 11883
        [[lines]]
        name = "rs485"
        transport = "rtu"
        path = "/dev/ttyS1"
        [[devices]]
        name = "tank"
        line = "rs485"
        [[devices.points]]
        name = "level"
        register = 4
        data_type = "i16"
        decimals_register = 3
        unit = "m"
        "#,
    );
    let config = Config::load(Some(&path)).unwrap();
    assert_eq!(config.poll_interval_ms, 2000);
    assert_eq!(config.mqtt.port, 11883);
    assert_eq!(config.mqtt.host, "127.0.0.1");
    assert_eq!(config.devices[0].unit, 1);
    assert_eq!(config.lines[0].baud, 9600);
    assert_eq!(config.lines[0].retries, 1);
    assert_eq!(config.devices[0].points[0].data_type, DataType::I16);
}

#[test]
fn unknown_keys_are_refused_with_their_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "id = \"gw-1\"\npoll_intervall_ms = 5\n");
    let err = Config::load(Some(&path)).unwrap_err().to_string();
    assert!(err.contains("poll_intervall_ms"), "{err}");
}

#[test]
fn a_device_on_an_unknown_line_or_a_line_without_its_address_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let orphan = "id = \"gw-1\"\n[[devices]]\nname = \"tank\"\nline = \"nope\"\npoints = []\n";
    let err = Config::load(Some(&write(&dir, orphan)))
        .unwrap_err()
        .to_string();
    assert!(err.contains("line `nope`"), "{err}");
    let rtu = "id = \"gw-1\"\n[[lines]]\nname = \"a\"\ntransport = \"rtu\"\n";
    let err = Config::load(Some(&write(&dir, rtu)))
        .unwrap_err()
        .to_string();
    assert!(err.contains("`path`"), "{err}");
}

#[test]
fn invalid_gateway_id_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "id = \"gw/1\"\n");
    let err = Config::load(Some(&path)).unwrap_err().to_string();
    assert!(err.contains("key `id`"), "{err}");
}

#[test]
fn the_example_config_in_deploy_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/examples/gateway.toml");
    let config = Config::load(Some(&path)).unwrap();
    assert_eq!(config.devices.len(), 4);
    assert!(
        config.devices[2]
            .points
            .iter()
            .any(|p| p.name == "fire_fault" && p.event)
    );
}
