"""Settings: one object from the command line, TARGET_PROXY_* variables and a TOML file."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from proxy.config import read_toml
from proxy.emulator import settings as emulator_settings
from proxy.emulator.settings import EmulatorSettings
from proxy.settings import Settings, SettingsError, load_settings, to_environ

EXAMPLE = Path(__file__).resolve().parents[1] / "proxy" / "config.example.toml"


def test_command_line_beats_environment_beats_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text('port = 9001\nclient = "from-file"\nlog_level = "debug"\n[cache]\nmax_entries = 77\n')
    monkeypatch.setenv("TARGET_PROXY_CONFIG", str(config))
    monkeypatch.setenv("TARGET_PROXY_CLIENT", "from-env")
    monkeypatch.setenv("TARGET_PROXY_PORT", "9002")
    settings = load_settings({"port": 9003, "workers": None})
    assert settings.port == 9003
    assert settings.client == "from-env"
    assert settings.log_level == "debug"
    assert settings.cache_max_entries == 77, "a TOML table is a prefix"
    assert settings.workers == 1


def test_errors_name_the_setting_and_where_to_set_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TARGET_PROXY_PORT", "eighty")
    with pytest.raises(SettingsError) as error:
        load_settings(options={"port": "--port"})
    message = str(error.value)
    assert "'port'" in message and "TARGET_PROXY_PORT" in message and "--port" in message


@pytest.mark.parametrize(
    ("values", "setting"),
    [
        ({"log_level": "loud"}, "log_level"),
        ({"upstream": "ftp://example"}, "upstream"),
        ({"client_keys": {"short": ["operator"]}}, "client_keys"),
        ({"client_keys": {"a-long-enough-key-01": ["root"]}}, "client_keys"),
        ({"notification_sync": "sometimes"}, "notification_sync"),
        ({"client_key_rate": "lots"}, "client_key_rate"),
        ({"max_header_bytes": 100}, "max_header_bytes"),
        ({"header_timeout_seconds": 0}, "header_timeout_seconds"),
        ({"upstream_circuit_failures": 0}, "upstream_circuit_failures"),
        ({"nonsense": 1}, "nonsense"),
    ],
)
def test_bad_values_are_refused(values: dict[str, object], setting: str) -> None:
    with pytest.raises(SettingsError, match=f"'{setting}'"):
        load_settings(values)


def test_the_example_file_covers_every_setting_and_loads_unchanged_with_no_key() -> None:
    text = EXAMPLE.read_text()
    names = [*Settings.model_fields, *(f"emulator_{name}" for name in EmulatorSettings.model_fields)]
    missing = [name for name in names if name not in ("config", "defaults") and name not in text]
    assert missing == []
    values = read_toml(EXAMPLE, keep=names)  # table settings stay tables
    settings = Settings(**{k: v for k, v in values.items() if not k.startswith("emulator_")})
    emulator = EmulatorSettings(
        **{k.removeprefix("emulator_"): v for k, v in values.items() if k.startswith("emulator_")}
    )
    assert emulator.port == 8081 and emulator.ims_org_id == "EMULATOR@AdobeOrg"
    assert settings.prefetch_groups["demo"][0] == "home-hero"
    assert settings.client_keys == {}, "a copied example opens nothing"


def test_the_examples_placeholder_keys_are_refused_at_start(tmp_path: Path) -> None:
    placeholders = re.findall(r'^# "(replace-with[^"]+)"', EXAMPLE.read_text(), re.MULTILINE)
    readme = (EXAMPLE.parents[1] / "README.md").read_text()
    placeholders += re.findall(r'"(replace-with-[a-z-]+)"', readme)
    assert len(placeholders) >= 2
    for key in [*placeholders, "your-key-goes-here-0001", "changeme-changeme-changeme"]:
        with pytest.raises(SettingsError, match="placeholder from the examples"):
            load_settings({"client_keys": {key: ["operator"]}})
    assert load_settings({"client_keys": {"Qx3v9-kPz0aL7mN2wR8tY": ["operator"]}}).client_keys


def run_cli(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "proxy", *args],
        env={"PATH": "/usr/bin:/bin", **(env or {})},
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
        check=False,
    )


@pytest.mark.parametrize(
    ("variable", "shape"),
    [
        ("TARGET_PROXY_CLIENT_KEYS", '{"<random key>": ["delivery"]}'),
        ("TARGET_PROXY_PREFETCH_GROUPS", '{"demo": ["home-hero", "footer"]}'),
        ("TARGET_PROXY_EMULATOR_CLUSTERS", "[28, 31]"),
    ],
)
def test_a_table_in_the_environment_that_is_not_json_is_one_line(tmp_path: Path, variable: str, shape: str) -> None:
    result = run_cli(tmp_path, "serve", "--port", "0", env={variable: "{key: [operator]"})
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert variable in result.stderr and shape in result.stderr
    assert "Traceback" not in result.stderr


def test_messages_name_only_options_that_exist(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "serve", "--port", "0", env={"TARGET_PROXY_CACHE_MAX_ENTRIES": "many"})
    assert result.returncode == 2
    assert "TARGET_PROXY_CACHE_MAX_ENTRIES" in result.stderr and "--cache-max-entries" not in result.stderr
    port = run_cli(tmp_path, "serve", "--port", "0", env={"TARGET_PROXY_WORKERS": "x"})
    assert "--workers / TARGET_PROXY_WORKERS" in port.stderr
    emulator = run_cli(tmp_path, "emulator", "--port", "x")
    assert emulator.returncode == 2 and "Traceback" not in emulator.stderr


def test_a_misspelt_variable_is_named_with_what_was_meant(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "serve", "--port", "0", "--workers", "0", env={"TARGET_PROXY_CACHE_MAX_ENTRYS": "10"})
    assert (
        "target-proxy: warning: TARGET_PROXY_CACHE_MAX_ENTRYS is not a setting and is ignored; "
        "did you mean TARGET_PROXY_CACHE_MAX_ENTRIES?"
    ) in result.stderr


def test_version_and_help(tmp_path: Path) -> None:
    from proxy import __version__

    version = run_cli(tmp_path, "--version")
    assert version.returncode == 0 and version.stdout.strip() == f"target-proxy {__version__}"
    top = run_cli(tmp_path, "--help")
    assert top.returncode == 0 and "``" not in top.stdout and "{serve," not in top.stdout
    for command in ("serve", "emulator", "upload-profiles", "healthcheck"):
        assert command in top.stdout
    for command in ("serve", "emulator", "upload-profiles"):
        text = run_cli(tmp_path, command, "--help").stdout
        options = re.findall(r"^  (--[a-z-]+)", text, re.MULTILINE)
        assert options, text
        blocks = re.split(r"\n  (?=-)", text.split("options:", 1)[1])[1:]
        for block in blocks:
            if block.startswith("-h"):
                continue
            words = " ".join(block.split())
            assert "(default:" in words or "(required)" in words, f"{command}: {block}"


def test_workers_rebuild_the_same_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    original = Settings(
        port=9100, prefetch_groups={"demo": ["a", "b"]}, ims_client_secret="s3cret", client_keys={"k" * 16: ["admin"]}
    )
    for name, value in to_environ(original).items():
        monkeypatch.setenv(name, value)
    rebuilt = load_settings()
    assert rebuilt.model_dump() == original.model_dump()
    assert rebuilt.ims_client_secret is not None and rebuilt.ims_client_secret.get_secret_value() == "s3cret"


def test_a_bad_setting_stops_the_command_with_a_clear_message(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "proxy", "serve", "--port", "0"],
        env={"TARGET_PROXY_WORKERS": "0", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "invalid setting 'workers'" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_emulator_reads_its_own_settings_from_the_shared_file_and_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "both.toml"
    config.write_text('port = 9001\nemulator_port = 9101\n[emulator]\nims_org_id = "FILE@AdobeOrg"\n')
    monkeypatch.setenv("TARGET_PROXY_CONFIG", str(config))
    monkeypatch.setenv("TARGET_PROXY_EMULATOR_REPLICATION_DELAY_MS", "5")

    gateway = load_settings()
    emulator = emulator_settings.load_settings({"emulator_catalog": None, "emulator_host": "127.0.0.2"})

    assert gateway.port == 9001 and not hasattr(gateway, "emulator_port")
    assert (emulator.port, emulator.host, emulator.replication_delay_ms) == (9101, "127.0.0.2", 5)
    assert emulator.ims_org_id == "FILE@AdobeOrg", "an [emulator] table is the emulator_ prefix"
    with pytest.raises(SettingsError, match=r"'emulator_clusters'.*TARGET_PROXY_EMULATOR_CLUSTERS"):
        emulator_settings.load_settings({"emulator_clusters": [100]})
    with pytest.raises(SettingsError, match="unknown setting 'emulator_colour'"):
        emulator_settings.load_settings({"emulator_colour": "blue"})
    rebuilt = emulator_settings.to_environ(emulator)
    assert rebuilt["TARGET_PROXY_EMULATOR_PORT"] == "9101"


def test_parts_are_built_from_their_groups_of_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TARGET_PROXY_UPSTREAM_TIMEOUT_MS", "1234")
    monkeypatch.setenv("TARGET_PROXY_NOTIFICATION_MAX_DELAY_MS", "2500")
    settings = load_settings(
        {
            "upstream": "http://127.0.0.1:9/",
            "notification_sync": "full",
            "ims_client_secret": "s3cret",
            "admin_host": "a",
        }
    )

    upstream = settings.upstream_client
    assert (upstream.url, upstream.timeout_ms, upstream.admin_host) == ("http://127.0.0.1:9", 1234, "a")
    notes = settings.notifications
    assert (notes.max_delay_s, notes.fsync, notes.retry_base_s) == (2.5, True, 0.5)
    assert settings.ims.client_secret is not None and settings.ims.client_secret.get_secret_value() == "s3cret"
    assert settings.ims.url == settings.ims_url == settings.upstream_client.ims_url
    assert settings.admin.calls_per_minute == 50 and settings.admin.queue_seconds == 30.0
    shared = Settings(redis_url="redis://127.0.0.1:6390/0", redis_timeout_ms=250, redis_claim_idle_ms=1500).redis
    assert (shared.url, shared.timeout_s, shared.claim_idle_s, shared.prefix) == (
        "redis://127.0.0.1:6390/0",
        0.25,
        1.5,
        "target-proxy:",
    )
