//! PostgreSQL sources against a real server: a throwaway one per test, made with the
//! installed server binaries (`initdb`, `pg_ctl` under `/usr/lib/postgresql/*/bin` or on
//! `PATH`) in a temporary folder, listening on a free port of 127.0.0.1 and a private socket
//! folder, run as an unprivileged user when the tests run as root, and stopped when dropped.
//!
//! Where the binaries are missing the tests say so and pass, unless
//! `REWIND_REQUIRE_POSTGRES` is set (`.ci/run` sets it, after installing them).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

/// The superuser's name and password in every test server.
pub(crate) const ADMIN: &str = "admin";
pub(crate) const ADMIN_PASSWORD: &str = "admin-secret-8d1f";

/// A test server, stopped and removed when dropped.
pub struct Server {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
    /// The user the server runs as, where the tests run as root.
    runs_as: Option<(u32, u32)>,
}

/// The folder of the newest installed server binaries.
fn binaries() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    if let Some((_, bin)) = found.pop() {
        return Some(bin);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .find(|p| p.join("initdb").exists() && p.join("pg_ctl").exists())
    })
}

/// The uid and gid of a user named in /etc/passwd.
fn user_ids(name: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.first() == Some(&name) && fields.len() > 3)
            .then(|| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))
            .flatten()
    })
}

impl Server {
    /// A new server, or `None` (said on stderr) where this machine has no server binaries.
    pub fn start(test: &str) -> Option<Self> {
        Self::start_with(test, None, None)
    }

    /// A new server that takes TCP connections only over TLS, with this certificate and key
    /// (PEM).
    pub fn start_tls(test: &str, cert: &str, key: &str) -> Option<Self> {
        Self::start_with(test, Some((cert, key)), None)
    }

    /// As [`Server::start_tls`], taking over TCP only clients that present a certificate
    /// signed by `clients` (PEM) naming the user (`cert` authentication).
    pub fn start_tls_clients(test: &str, cert: &str, key: &str, clients: &str) -> Option<Self> {
        Self::start_with(test, Some((cert, key)), Some(clients))
    }

    fn start_with(test: &str, tls: Option<(&str, &str)>, clients: Option<&str>) -> Option<Self> {
        let Some(bin) = binaries() else {
            let why = format!(
                "skipped: {test} needs a PostgreSQL server (initdb, pg_ctl and postgres under /usr/lib/postgresql/*/bin or on PATH; Debian's package postgresql)"
            );
            assert!(
                std::env::var_os("REWIND_REQUIRE_POSTGRES").is_none(),
                "{why}, and REWIND_REQUIRE_POSTGRES is set"
            );
            eprintln!("{why}");
            return None;
        };
        // The server refuses to run as root: as the postgres user where there is one.
        let runs_as = rustix::process::geteuid()
            .is_root()
            .then(|| user_ids("postgres").or_else(|| user_ids("nobody")))
            .map(|ids| ids.expect("a postgres or nobody user to run the test server as"));
        let dir = tempfile::Builder::new()
            .prefix("rewind-pg-")
            .tempdir()
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, ADMIN_PASSWORD).unwrap();
        if let Some((uid, gid)) = runs_as {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
            std::os::unix::fs::chown(&pwfile, Some(uid), Some(gid)).unwrap();
        }
        let data = dir.path().join("data");
        let run = |program: &str, args: &[&str]| -> Output {
            let mut command = Command::new(bin.join(program));
            command
                .args(args)
                .stdin(Stdio::null())
                .env("LC_ALL", "C")
                .current_dir(dir.path());
            if let Some((uid, gid)) = runs_as {
                use std::os::unix::process::CommandExt;
                command.uid(uid).gid(gid);
            }
            command.output().unwrap()
        };
        let out = run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                ADMIN,
                "--pwfile",
                pwfile.to_str().unwrap(),
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        assert!(out.status.success(), "initdb: {}", text(&out));
        let mut tls_options = String::new();
        if let Some((cert, key)) = tls {
            for (name, pem) in [("server.crt", cert), ("server.key", key)] {
                let file = dir.path().join(name);
                std::fs::write(&file, pem).unwrap();
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
                if let Some((uid, gid)) = runs_as {
                    std::os::unix::fs::chown(&file, Some(uid), Some(gid)).unwrap();
                }
            }
            // TCP only over TLS: a connection that works was encrypted.
            let hba = data.join("pg_hba.conf");
            let rules = std::fs::read_to_string(&hba).unwrap();
            let rules: String = rules
                .lines()
                .map(|l| match l.strip_prefix("host ") {
                    Some(rest) if clients.is_some() => format!(
                        "hostssl {} cert\n",
                        rest.trim_end().trim_end_matches("scram-sha-256").trim_end()
                    ),
                    Some(rest) => format!("hostssl {rest}\n"),
                    None => format!("{l}\n"),
                })
                .collect();
            std::fs::write(&hba, rules).unwrap();
            tls_options = format!(
                " -c ssl=on -c ssl_cert_file={0}/server.crt -c ssl_key_file={0}/server.key",
                dir.path().display()
            );
            if let Some(clients) = clients {
                let file = dir.path().join("clients.crt");
                std::fs::write(&file, clients).unwrap();
                if let Some((uid, gid)) = runs_as {
                    std::os::unix::fs::chown(&file, Some(uid), Some(gid)).unwrap();
                }
                tls_options.push_str(&format!(" -c ssl_ca_file={}", file.display()));
            }
        }
        // A free port: taken by the kernel, let go, given to the server (tried again where
        // another process took it in between).
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let options = format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=20{tls_options}",
                dir.path().display()
            );
            let out = run(
                "pg_ctl",
                &[
                    "-D",
                    data.to_str().unwrap(),
                    "-o",
                    &options,
                    "-l",
                    dir.path().join("log").to_str().unwrap(),
                    "-w",
                    "start",
                ],
            );
            if out.status.success() {
                return Some(Self {
                    dir,
                    bin,
                    port,
                    runs_as,
                });
            }
        }
        panic!(
            "the test server did not start: {}",
            std::fs::read_to_string(dir.path().join("log")).unwrap_or_default()
        );
    }

    /// A new database `name` holding a fixture's dump (`postgres/bank.sql`).
    pub fn load(&self, name: &str, dump: &str) {
        self.database(name, &std::fs::read_to_string(fixture(dump)).unwrap());
    }

    /// A URL for `user` (with `password`, if any) on database `db`.
    pub fn url(&self, user: &str, password: Option<&str>, db: &str) -> String {
        match password {
            Some(pw) => format!("postgres://{user}:{pw}@127.0.0.1:{}/{db}", self.port),
            None => format!("postgres://{user}@127.0.0.1:{}/{db}", self.port),
        }
    }

    /// The superuser's connection to `db` (over the socket, which TLS does not concern).
    pub fn admin(&self, db: &str) -> postgres::Client {
        postgres::Client::connect(
            &format!(
                "host={} port={} user={ADMIN} dbname={db}",
                self.dir.path().display(),
                self.port
            ),
            postgres::NoTls,
        )
        .unwrap()
    }

    /// A new database `name` holding what `sql` makes.
    pub fn database(&self, name: &str, sql: &str) {
        self.admin("postgres")
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        self.admin(name).batch_execute(sql).unwrap();
    }

    /// A login role that may only read: `SELECT` on every table of `db`'s public schema.
    pub fn reader(&self, db: &str, name: &str, password: &str) {
        self.admin(db)
            .batch_execute(&format!(
                "CREATE ROLE {name} LOGIN PASSWORD '{password}';
                 GRANT CONNECT ON DATABASE {db} TO {name};
                 GRANT USAGE ON SCHEMA public TO {name};
                 GRANT SELECT ON ALL TABLES IN SCHEMA public TO {name};"
            ))
            .unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let mut command = Command::new(self.bin.join("pg_ctl"));
        command
            .args(["-D", self.dir.path().join("data").to_str().unwrap()])
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some((uid, gid)) = self.runs_as {
            use std::os::unix::process::CommandExt;
            command.uid(uid).gid(gid);
        }
        let _ = command.status();
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/sources")
        .join(name)
}

/// rewind with its own folders under `data` and `env` added; no `PG*` variable of the
/// machine's leaks in.
fn rewind(data: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rewind"));
    command
        .args(args)
        .env("REWIND_DATA_DIR", data)
        .env("REWIND_CONFIG_DIR", data.join("config"))
        .env("HOME", data)
        .stdin(Stdio::null());
    for (name, _) in std::env::vars() {
        if name.starts_with("PG") {
            command.env_remove(name);
        }
    }
    command.envs(env.iter().copied());
    command.output().unwrap()
}

fn ok(data: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let out = rewind(data, args, env);
    assert!(out.status.success(), "rewind {args:?}\n{}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fails(data: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let out = rewind(data, args, env);
    assert_eq!(
        out.status.code(),
        Some(2),
        "rewind {args:?}\n{}",
        text(&out)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every row of the application's tables, as the server has them: what must not change.
fn dump(server: &Server, db: &str) -> Vec<String> {
    let mut admin = server.admin(db);
    let mut rows = Vec::new();
    for table in ["bank_events", "bank_snapshots"] {
        for row in admin
            .query(
                &format!(
                    "SELECT t::text FROM {table} t ORDER BY originator_id, originator_version"
                ),
                &[],
            )
            .unwrap()
        {
            rows.push(row.get(0));
        }
    }
    rows
}

fn expected() -> Value {
    serde_json::from_slice(&std::fs::read(fixture("postgres/bank.expected.json")).unwrap()).unwrap()
}

#[test]
fn an_eventsourcing_database_read_by_a_select_only_role_gives_every_state_the_library_gives() {
    let Some(server) = Server::start("reading eventsourcing's PostgreSQL tables") else {
        return;
    };
    server.load("bank", "postgres/bank.sql");
    server.reader("bank", "viewer", "viewer-pw-31");
    let before = dump(&server, "bank");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let url = server.url("viewer", Some("viewer-pw-31"), "bank");
    let expected = expected();

    let listed: Value = serde_json::from_str(&ok(data, &["streams", &url, "--json"], &[])).unwrap();
    let kinds: std::collections::BTreeMap<String, String> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_owned(),
                s["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let aggregates = expected["aggregates"].as_object().unwrap();
    assert_eq!(kinds.len(), aggregates.len());
    for (id, aggregate) in aggregates {
        assert_eq!(kinds[id], aggregate["class"].as_str().unwrap(), "{id}");
    }

    // The user's reducer, kept in their settings: every state the library gave.
    let reducer = format!(
        "jq:{}",
        std::fs::read_to_string(fixture("eventsourcing/bank.jq")).unwrap()
    );
    ok(data, &["reducer", &url, "--set", &reducer], &[]);
    for (id, aggregate) in aggregates {
        for (version, at) in aggregate["versions"].as_object().unwrap() {
            let out = ok(data, &["state", &url, id, "--at", version, "--json"], &[]);
            let printed: Value = serde_json::from_str(&out).unwrap();
            assert_eq!(printed["state"], at["attributes"], "{id} v{version}");
        }
    }
    let out = ok(data, &["verify", &url], &[]);
    assert!(
        out.contains(&format!(
            "{} of the file's {} snapshots are the state your reducer gives",
            expected["snapshots"], expected["snapshots"]
        )),
        "{out}"
    );
    // Nothing was written, and the password is in no name rewind keeps.
    assert_eq!(dump(&server, "bank"), before);
    for entry in walk(data) {
        let name = entry.to_string_lossy().into_owned();
        assert!(!name.contains("viewer-pw-31"), "{name}");
        let bytes = std::fs::read(&entry).unwrap_or_default();
        assert!(
            !bytes.windows(12).any(|w| w == b"viewer-pw-31"),
            "the password is kept in {name}"
        );
    }
}

/// How many events `rewind streams` lists for `source` (a URL or a mirror), all streams.
fn events(data: &Path, source: &str) -> u64 {
    let listed: Value =
        serde_json::from_str(&ok(data, &["streams", source, "--json"], &[])).unwrap();
    listed
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["head"].as_u64().unwrap())
        .sum()
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn the_password_comes_from_the_url_pgpassword_or_pgpass_and_is_never_shown() {
    let Some(server) = Server::start("PostgreSQL passwords") else {
        return;
    };
    server.load("bank", "postgres/bank.sql");
    server.reader("bank", "viewer", "right-pw-77");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let port = server.port.to_string();

    // A wrong password: the server's words, where, and how to give one; never the password.
    let wrong = server.url("viewer", Some("wrong-pw-55"), "bank");
    let err = fails(data, &["streams", &wrong], &[]);
    assert!(err.contains("password authentication failed"), "{err}");
    assert!(
        err.contains(&format!("postgres://viewer@127.0.0.1:{port}/bank")),
        "{err}"
    );
    assert!(err.contains("PGPASSWORD"), "{err}");
    assert!(!err.contains("wrong-pw-55"), "{err}");

    // None at all, then from PGPASSWORD, then from the password file.
    let bare = server.url("viewer", None, "bank");
    let err = fails(data, &["streams", &bare], &[]);
    assert!(err.contains("password"), "{err}");
    let listed = ok(data, &["streams", &bare], &[("PGPASSWORD", "right-pw-77")]);
    assert_eq!(listed.lines().count(), 7, "{listed}");
    let pgpass = data.join("pgpass");
    std::fs::write(
        &pgpass,
        format!("# comment\nother:*:*:*:nope\n127.0.0.1:{port}:bank:viewer:right-pw-77\n"),
    )
    .unwrap();
    let listed = ok(
        data,
        &["streams", &bare],
        &[("PGPASSFILE", pgpass.to_str().unwrap())],
    );
    assert_eq!(listed.lines().count(), 7, "{listed}");
    // The PG variables fill what the URL leaves out.
    let listed = ok(
        data,
        &["streams", "postgres://"],
        &[
            ("PGHOST", "127.0.0.1"),
            ("PGPORT", &port),
            ("PGUSER", "viewer"),
            ("PGDATABASE", "bank"),
            ("PGPASSWORD", "right-pw-77"),
        ],
    );
    assert_eq!(listed.lines().count(), 7, "{listed}");
    // One mirror for all of them: named by user, host, port and database alone.
    let mirrors: Vec<_> = std::fs::read_dir(data.join("mirrors"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".rewind"))
        .collect();
    assert_eq!(mirrors.len(), 1, "{mirrors:?}");
    assert!(!mirrors[0].contains("pw"), "{mirrors:?}");
    // Listed by the URL without its password, and kept by --prune (a server is not asked).
    let listed = ok(data, &["mirrors"], &[]);
    assert!(
        listed.contains(&format!("postgres://viewer@127.0.0.1:{port}/bank"))
            && !listed.contains("(gone)"),
        "{listed}"
    );
    let pruned = ok(data, &["mirrors", "--prune"], &[]);
    assert!(pruned.contains("0 mirrors removed"), "{pruned}");
    let out = ok(data, &["mirrors", "--remove", &wrong], &[]);
    assert!(
        out.contains("removed") && !out.contains("wrong-pw-55"),
        "{out}"
    );
}

#[test]
fn a_server_that_is_not_there_a_missing_database_and_tables_of_no_format_are_told_apart() {
    let Some(server) = Server::start("PostgreSQL errors") else {
        return;
    };
    server.database("empty", "CREATE TABLE unrelated (id int)");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = fails(
        data,
        &[
            "streams",
            &format!("postgres://admin:x@127.0.0.1:{closed}/bank?connect_timeout=2"),
        ],
        &[],
    );
    assert!(
        err.contains(&format!("127.0.0.1:{closed}/bank")) && err.contains("refused"),
        "{err}"
    );
    let err = fails(
        data,
        &[
            "streams",
            &server.url(ADMIN, Some(ADMIN_PASSWORD), "nowhere"),
        ],
        &[],
    );
    assert!(err.contains("database \"nowhere\" does not exist"), "{err}");
    let err = fails(
        data,
        &["streams", &server.url(ADMIN, Some(ADMIN_PASSWORD), "empty")],
        &[],
    );
    assert!(
        err.contains("/empty: no tables of a format rewind reads"),
        "{err}"
    );
    let err = fails(
        data,
        &[
            "streams",
            &format!("{}?sslmode=bogus", server.url(ADMIN, None, "empty")),
        ],
        &[],
    );
    assert!(err.contains("sslmode=\"bogus\""), "{err}");
    assert!(!err.contains(ADMIN_PASSWORD), "{err}");
    // Nothing left behind for a source that could not be read.
    let left: Vec<_> = std::fs::read_dir(data.join("mirrors"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn rows_written_after_a_sync_are_mirrored_by_the_next_and_a_rewritten_history_is_mirrored_again() {
    let Some(server) = Server::start("PostgreSQL incremental sync") else {
        return;
    };
    server.load("bank", "postgres/bank.sql");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let url = server.url(ADMIN, Some(ADMIN_PASSWORD), "bank");
    let bella = expected()["aggregates"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(_, a)| a["versions"]["1"]["attributes"]["name"] == "Bella")
        .map(|(id, a)| (id.clone(), a["head_version"].as_u64().unwrap()))
        .unwrap();
    let head = |data: &Path| -> u64 {
        let listed: Value =
            serde_json::from_str(&ok(data, &["streams", &url, "--json"], &[])).unwrap();
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == bella.0.as_str())
            .unwrap()["head"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(head(data), bella.1);
    // The application saves a new trick: a row as eventsourcing writes it.
    let state = br#"{"timestamp":{"_type_":"datetime_iso","_data_":"2026-12-03T17:00:00+00:00"},"trick":"juggle"}"#;
    server
        .admin("bank")
        .execute(
            "INSERT INTO bank_events (originator_id, originator_version, topic, state) VALUES ($1::text::uuid, $2, 'bank:Dog.TrickAdded', $3)",
            &[&bella.0, &i64::try_from(bella.1 + 1).unwrap(), &state.as_slice()],
        )
        .unwrap();
    assert_eq!(head(data), bella.1 + 1);
    let out = ok(data, &["log", &url, &bella.0, "--tail", "1"], &[]);
    assert!(out.contains("juggle"), "{out}");
    // An event already mirrored removed from the source: the mirror is made again, saying so.
    server
        .admin("bank")
        .execute(
            "DELETE FROM bank_events WHERE originator_id = $1::text::uuid AND originator_version = $2",
            &[&bella.0, &i64::try_from(bella.1 + 1).unwrap()],
        )
        .unwrap();
    let out = rewind(data, &["streams", &url], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("its mirror was made again"), "{said}");
    assert_eq!(head(data), bella.1);
}

#[test]
fn a_sync_killed_between_batches_resumes_where_it_stopped_and_loses_nothing() {
    let Some(server) = Server::start("PostgreSQL sync resumed") else {
        return;
    };
    server.load("bank", "postgres/bank.sql");
    // A long-lived dog: 5,000 more events, as eventsourcing writes them.
    server
        .admin("bank")
        .batch_execute(
            "INSERT INTO bank_events (originator_id, originator_version, topic, state)
             SELECT '00000000-0000-4000-8000-000000000001'::uuid, v,
                    CASE WHEN v = 1 THEN 'bank:Dog.Registered' ELSE 'bank:Dog.TrickAdded' END,
                    convert_to(CASE WHEN v = 1
                      THEN '{\"timestamp\":{\"_type_\":\"datetime_iso\",\"_data_\":\"2026-12-03T17:00:00+00:00\"},\"originator_topic\":\"bank:Dog\",\"name\":\"Laika\"}'
                      ELSE '{\"timestamp\":{\"_type_\":\"datetime_iso\",\"_data_\":\"2026-12-03T17:00:00+00:00\"},\"trick\":\"trick ' || v || '\"}' END, 'UTF8')
             FROM generate_series(1, 5000) AS v",
        )
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let url = server.url(ADMIN, Some(ADMIN_PASSWORD), "bank");
    let laika = "00000000-0000-4000-8000-000000000001";
    // Killed (abort, as kill -9) after the second batch was committed to the mirror.
    let out = rewind(
        data,
        &["streams", &url],
        &[("REWIND_CRASH_AT", "postgres.batch:2")],
    );
    assert!(!out.status.success(), "{}", text(&out));
    // Its mirror holds the two batches (read as the rewind database it is, not synced).
    let mirror = walk(&data.join("mirrors"))
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "rewind"))
        .unwrap();
    assert_eq!(events(data, mirror.to_str().unwrap()), 4_000);
    // The next run goes on from there: every event once, in order.
    let out = ok(data, &["log", &url, laika, "--tail", "2"], &[]);
    assert!(
        out.contains("trick 4999") && out.contains("trick 5000"),
        "{out}"
    );
    assert_eq!(events(data, &url), 5_061);
    let out = ok(data, &["verify", &url], &[]);
    assert!(!out.contains("differ"), "{out}");
}

/// A certificate authority and a server certificate it signed for `names` (PEM: CA, cert, key).
fn certificates(names: &[&str]) -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "rewind test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
            .unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}

#[test]
fn tls_is_made_as_each_sslmode_asks_and_a_certificate_that_does_not_hold_is_refused() {
    // The server's certificate names 127.0.0.1, the address the tests connect to.
    let (ca, cert, key) = certificates(&["127.0.0.1", "localhost"]);
    let Some(server) = Server::start_tls("PostgreSQL over TLS", &cert, &key) else {
        return;
    };
    server.load("bank", "postgres/bank.sql");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let roots = data.join("root.pem");
    std::fs::write(&roots, &ca).unwrap();
    let (other_ca, _, _) = certificates(&["127.0.0.1"]);
    let strangers = data.join("other.pem");
    std::fs::write(&strangers, &other_ca).unwrap();
    let url = server.url(ADMIN, Some(ADMIN_PASSWORD), "bank");
    let with = |query: &str| format!("{url}?{query}");

    // The server takes TCP connections over TLS only, so each that lists the streams was
    // encrypted.
    for query in [
        format!("sslmode=verify-full&sslrootcert={}", roots.display()),
        format!("sslmode=verify-ca&sslrootcert={}", roots.display()),
        "sslmode=require".to_owned(),
        "sslmode=prefer".to_owned(),
    ] {
        let listed = ok(data, &["streams", &with(&query)], &[]);
        assert_eq!(listed.lines().count(), 7, "{query}: {listed}");
    }
    // PGSSLMODE and PGSSLROOTCERT say the same.
    let root_text = roots.to_str().unwrap();
    let listed = ok(
        data,
        &["streams", &url],
        &[("PGSSLMODE", "verify-full"), ("PGSSLROOTCERT", root_text)],
    );
    assert_eq!(listed.lines().count(), 7, "{listed}");
    // Without TLS the server refuses; a certificate from another authority is refused.
    let err = fails(data, &["streams", &with("sslmode=disable")], &[]);
    assert!(err.contains("no encryption"), "{err}");
    let err = fails(
        data,
        &[
            "streams",
            &with(&format!(
                "sslmode=verify-ca&sslrootcert={}",
                strangers.display()
            )),
        ],
        &[],
    );
    assert!(err.contains("certificate"), "{err}");
    assert!(
        err.contains(&format!("127.0.0.1:{}/bank", server.port)),
        "{err}"
    );
    // verify-* with no root certificates says where it looked.
    let err = fails(data, &["streams", &with("sslmode=verify-full")], &[]);
    assert!(err.contains("root.crt does not exist"), "{err}");
    assert!(!err.contains(ADMIN_PASSWORD), "{err}");
}

#[test]
fn verify_full_refuses_a_certificate_for_another_host_and_require_refuses_a_server_without_tls() {
    let (ca, cert, key) = certificates(&["db.example"]);
    let Some(server) = Server::start_tls("PostgreSQL certificate names", &cert, &key) else {
        return;
    };
    server.load("bank", "postgres/bank.sql");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let roots = data.join("root.pem");
    std::fs::write(&roots, &ca).unwrap();
    let url = server.url(ADMIN, Some(ADMIN_PASSWORD), "bank");
    let err = fails(
        data,
        &[
            "streams",
            &format!("{url}?sslmode=verify-full&sslrootcert={}", roots.display()),
        ],
        &[],
    );
    assert!(err.contains("certificate") && err.contains("name"), "{err}");
    // The chain alone holds.
    let listed = ok(
        data,
        &[
            "streams",
            &format!("{url}?sslmode=verify-ca&sslrootcert={}", roots.display()),
        ],
        &[],
    );
    assert_eq!(listed.lines().count(), 7, "{listed}");
    drop(server);

    let Some(plain) = Server::start("PostgreSQL without TLS") else {
        return;
    };
    plain.load("bank", "postgres/bank.sql");
    let url = plain.url(ADMIN, Some(ADMIN_PASSWORD), "bank");
    let err = fails(data, &["streams", &format!("{url}?sslmode=require")], &[]);
    assert!(err.contains("TLS"), "{err}");
    // prefer falls back to a plain connection.
    let listed = ok(data, &["streams", &format!("{url}?sslmode=prefer")], &[]);
    assert_eq!(listed.lines().count(), 7, "{listed}");
}

#[test]
fn a_statement_past_its_timeout_and_a_connection_dropped_mid_sync_are_said_and_the_next_run_resumes()
 {
    let Some(server) = Server::start("PostgreSQL timeouts and dropped connections") else {
        return;
    };
    server.load("bank", "postgres/bank.sql");
    let mut admin = server.admin("bank");
    // 5,000 more events, so that the sync takes several batches.
    admin
        .batch_execute(
            "INSERT INTO bank_events (originator_id, originator_version, topic, state)
             SELECT '00000000-0000-4000-8000-000000000002'::uuid, v, 'bank:Dog.TrickAdded',
                    convert_to('{\"trick\":\"t' || v || '\"}', 'UTF8')
             FROM generate_series(1, 5000) AS v;
             ALTER TABLE bank_events RENAME TO bank_rows;",
        )
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    // bank_rows has the columns too: the application is named.
    let url = format!(
        "{}?rewind_table=bank_events",
        server.url(ADMIN, Some(ADMIN_PASSWORD), "bank")
    );

    // The application's table behind a view that takes its time over every row.
    admin
        .batch_execute(
            "CREATE FUNCTION slow(n bigint) RETURNS bigint LANGUAGE plpgsql AS $$
             BEGIN PERFORM pg_sleep(0.002); RETURN n; END $$;
             CREATE VIEW bank_events AS
               SELECT originator_id, originator_version, topic, state, slow(notification_id) AS notification_id
               FROM bank_rows;",
        )
        .unwrap();
    let slow = format!("{url}&options=-c%20statement_timeout%3D300");
    let err = fails(data, &["streams", &slow], &[]);
    assert!(err.contains("statement timeout"), "{err}");
    assert!(err.contains("\"bank_events\""), "{err}");
    assert!(
        err.contains("statement_timeout"),
        "says how to change it: {err}"
    );

    // A view whose 3,000th row ends the connection: the first batch is kept.
    admin
        .batch_execute(
            "DROP VIEW bank_events;
             DROP FUNCTION slow;
             CREATE FUNCTION cut(n bigint) RETURNS bigint LANGUAGE plpgsql AS $$
             BEGIN
               IF n = 3000 THEN PERFORM pg_terminate_backend(pg_backend_pid()); END IF;
               RETURN n;
             END $$;
             CREATE VIEW bank_events AS
               SELECT originator_id, originator_version, topic, state, cut(notification_id) AS notification_id
               FROM bank_rows;",
        )
        .unwrap();
    let err = fails(data, &["streams", &url], &[]);
    assert!(
        err.contains(&format!("127.0.0.1:{}/bank", server.port)),
        "{err}"
    );
    assert!(err.contains("terminat") || err.contains("closed"), "{err}");
    // The application's table back: the next run goes on from the 2,000 already mirrored.
    admin
        .batch_execute(
            "DROP VIEW bank_events; DROP FUNCTION cut; ALTER TABLE bank_rows RENAME TO bank_events;",
        )
        .unwrap();
    assert_eq!(events(data, &url), 5_061);
    let out = ok(
        data,
        &[
            "log",
            &url,
            "00000000-0000-4000-8000-000000000002",
            "--tail",
            "1",
        ],
        &[],
    );
    assert!(out.contains("t5000"), "{out}");
}

#[test]
fn a_marten_store_is_read_by_seq_id_merged_and_its_stream_snapshots_are_checked_not_used() {
    let Some(server) = Server::start("reading Marten's tables") else {
        return;
    };
    server.load("quests", "postgres/marten.sql");
    server.reader("quests", "viewer", "viewer-pw-12");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let url = server.url("viewer", Some("viewer-pw-12"), "quests");
    let (ring, stone) = (
        "6f1e2a3b-0000-4000-8000-000000000001",
        "6f1e2a3b-0000-4000-8000-000000000002",
    );
    let listed: Value = serde_json::from_str(&ok(data, &["streams", &url, "--json"], &[])).unwrap();
    let listed: Vec<(String, u64, String)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_owned(),
                s["head"].as_u64().unwrap(),
                s["kind"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            (ring.to_owned(), 5, "Quest".to_owned()),
            (stone.to_owned(), 4, "Quest".to_owned())
        ]
    );
    let state = |stream: &str, flag: &str, at: &str| -> Value {
        let out = ok(data, &["state", &url, stream, flag, at, "--json"], &[]);
        serde_json::from_str::<Value>(&out).unwrap()["state"].clone()
    };
    assert_eq!(
        state(ring, "--at", "4"),
        serde_json::json!({"name": "Destroy the Ring", "status": "underway",
                           "members": ["Frodo", "Sam", "Merry"], "location": "Rivendell"})
    );
    // A null in a merge patch removes the member.
    assert_eq!(
        state(ring, "--at", "5"),
        serde_json::json!({"name": "Destroy the Ring", "members": ["Frodo", "Sam", "Merry"],
                           "location": "Moria"})
    );
    // --at-seq is the store's seq_id, --at-id the event's id.
    assert_eq!(state(stone, "--at-seq", "6"), state(stone, "--at", "2"));
    assert_eq!(
        state(ring, "--at-id", "a0000000-0000-4000-8000-000000000004"),
        state(ring, "--at", "3")
    );
    let log = ok(data, &["log", &url, stone], &[]);
    assert!(log.contains("members_joined"), "{log}");
    // verify: the first quest's snapshot is the state there; the second's lost a member.
    let out = rewind(data, &["verify", &url], &[]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains(
            "1 of the store's 2 stream snapshots (mt_streams) are the state the events give"
        ),
        "{said}"
    );
    assert!(said.contains(stone) && said.contains("Thorin"), "{said}");
    // The user's reducer replaces merge, kept in their settings.
    let out = ok(
        data,
        &[
            "reducer",
            &url,
            "--set",
            "jq:.state + {n: ((.state.n // 0) + 1)}",
        ],
        &[],
    );
    assert!(!out.contains("viewer-pw-12"), "{out}");
    assert_eq!(state(ring, "--at", "5"), serde_json::json!({"n": 5}));
}

/// A checkpoint id made 200 × 2^28 ticks (about 1.5 hours) earlier: its first 8 hex digits,
/// the high bits of its time, less 200 (as the test's SQL does).
fn shift(id: &str) -> String {
    let high = u32::from_str_radix(&id[..8], 16).unwrap() - 200;
    format!("{high:08x}{}", &id[8..])
}

/// Every `PostgresSaver` row of the fixture, as the server has them: what must not change.
fn langgraph_rows(server: &Server, db: &str) -> Vec<String> {
    let mut admin = server.admin(db);
    let mut rows = Vec::new();
    for table in ["checkpoints", "checkpoint_blobs", "checkpoint_writes"] {
        for row in admin
            .query(&format!("SELECT t::text FROM {table} t ORDER BY 1"), &[])
            .unwrap()
        {
            rows.push(row.get(0));
        }
    }
    rows
}

#[test]
fn a_langgraph_postgres_saver_gives_every_checkpoint_langgraph_gives_and_grows_incrementally() {
    let Some(server) = Server::start("reading LangGraph's PostgresSaver tables") else {
        return;
    };
    server.load("agents", "postgres/langgraph.sql");
    server.reader("agents", "viewer", "viewer-pw-77");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let url = server.url("viewer", Some("viewer-pw-77"), "agents");
    let mut expected: Value = serde_json::from_slice(
        &std::fs::read(fixture("postgres/langgraph.expected.json")).unwrap(),
    )
    .unwrap();
    crate::sources::bytes_as_base64(&mut expected);
    // `basic` ran an hour and a half before the rest (its ids, which are times, made so);
    // the newest checkpoints of `crash` (and the writes under them and under the one before,
    // which a running step adds before its checkpoint) are held back: the first sync sees a
    // run in progress, the next one the rest.
    let older = "lpad(to_hex(('x' || substr(checkpoint_id, 1, 8))::bit(32)::int8 - 200), 8, '0') || substr(checkpoint_id, 9)";
    let crash = expected["threads"]["crash"][""].as_array().unwrap();
    let cut = crash[crash.len() - 4]["checkpoint_id"].as_str().unwrap();
    let mut admin = server.admin("agents");
    admin
        .batch_execute(&format!(
            "UPDATE checkpoints SET checkpoint_id = {older},
               parent_checkpoint_id = {} WHERE thread_id = 'basic';
             UPDATE checkpoint_writes SET checkpoint_id = {older} WHERE thread_id = 'basic';
             CREATE TABLE held_c AS SELECT * FROM checkpoints WHERE thread_id = 'crash' AND checkpoint_id > '{cut}';
             CREATE TABLE held_w AS SELECT * FROM checkpoint_writes WHERE thread_id = 'crash' AND checkpoint_id >= '{cut}';
             DELETE FROM checkpoints WHERE thread_id = 'crash' AND checkpoint_id > '{cut}';
             DELETE FROM checkpoint_writes WHERE thread_id = 'crash' AND checkpoint_id >= '{cut}';",
            older.replace("checkpoint_id", "parent_checkpoint_id")
        ))
        .unwrap();
    let before = langgraph_rows(&server, "agents");
    let heads = |data: &Path| -> std::collections::BTreeMap<String, (u64, bool)> {
        let listed: Value =
            serde_json::from_str(&ok(data, &["streams", &url, "--json"], &[])).unwrap();
        listed
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["name"].as_str().unwrap().to_owned(),
                    (s["head"].as_u64().unwrap(), s["unfinished"] == true),
                )
            })
            .collect()
    };
    let first = heads(data);
    assert_eq!(first["crash"], (crash.len() as u64 - 3, false));
    assert_eq!(langgraph_rows(&server, "agents"), before);
    admin
        .batch_execute(
            "INSERT INTO checkpoint_writes SELECT * FROM held_w;
             INSERT INTO checkpoints SELECT * FROM held_c;
             DROP TABLE held_w; DROP TABLE held_c;",
        )
        .unwrap();
    let before = langgraph_rows(&server, "agents");
    let out = rewind(data, &["streams", &url, "--json"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        out.stderr.is_empty(),
        "rows only added are mirrored incrementally: {}",
        text(&out)
    );
    let now = heads(data);
    assert_eq!(now["crash"], (crash.len() as u64, true));
    // The same lines as the SqliteSaver file of the same runs: a fork, a subgraph's
    // namespace, and the two runs left unfinished.
    let unfinished: Vec<&str> = now
        .iter()
        .filter(|(_, (_, u))| *u)
        .map(|(name, _)| name.as_str())
        .collect();
    assert_eq!(unfinished, ["crash", "interrupt-open"]);
    assert_eq!(now.keys().filter(|n| n.starts_with("fork~")).count(), 1);
    assert_eq!(
        now.keys()
            .filter(|n| n.starts_with("subgraph/research:"))
            .count(),
        1
    );
    // 46 checkpoints, and the 4 versions the fork shares with the line it leaves.
    assert_eq!(now.values().map(|(head, _)| head).sum::<u64>(), 46 + 4);
    // Every checkpoint's state is the one the saver reads back, blobs and inline values put
    // together.
    let mut compared = 0;
    for (thread, namespaces) in expected["threads"].as_object().unwrap() {
        for (ns, list) in namespaces.as_object().unwrap() {
            let stream = if ns.is_empty() {
                thread.clone()
            } else {
                format!("{thread}/{ns}")
            };
            for want in list.as_array().unwrap() {
                let id = want["checkpoint_id"].as_str().unwrap();
                let id = if thread == "basic" {
                    shift(id)
                } else {
                    id.to_owned()
                };
                let id = id.as_str();
                let owner = now
                    .keys()
                    .filter(|n| *n == &stream || n.starts_with(&format!("{stream}~")))
                    .find_map(|name| {
                        let out =
                            rewind(data, &["state", &url, name, "--at-id", id, "--json"], &[]);
                        out.status
                            .success()
                            .then(|| serde_json::from_slice::<Value>(&out.stdout).unwrap())
                    })
                    .unwrap_or_else(|| panic!("no stream holds {stream} checkpoint {id}"));
                assert_eq!(
                    Value::Object(owner["state"].as_object().unwrap().clone()),
                    Value::Object(crate::sources::public(&want["values"])),
                    "{stream} checkpoint {id}"
                );
                compared += 1;
            }
        }
    }
    assert_eq!(compared, 46);
    // The crashed run's pending writes are those the saver returns for its newest checkpoint.
    let pending: Vec<&str> = crash.last().unwrap()["pending_writes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["channel"].as_str().unwrap())
        .collect();
    assert!(pending.contains(&"__error__"), "{pending:?}");
    let log = ok(data, &["streams", &url, "--json"], &[]);
    assert!(log.contains("__error__"), "{log}");
    // verify reproduces every checkpoint; nothing was written on the server, and the
    // password is in no file rewind keeps.
    let out = ok(data, &["verify", &url], &[]);
    assert!(
        out.contains("46 checkpoints of the source reproduced exactly"),
        "{out}"
    );
    assert_eq!(langgraph_rows(&server, "agents"), before);
    for entry in walk(data) {
        let bytes = std::fs::read(&entry).unwrap_or_default();
        assert!(
            !bytes.windows(12).any(|w| w == b"viewer-pw-77"),
            "the password is kept in {}",
            entry.display()
        );
    }
    // A checkpoint well older than the newest removed: everything is staged again, and the
    // mirror made again, saying so.
    let newest_basic = shift(
        expected["threads"]["basic"][""]
            .as_array()
            .unwrap()
            .last()
            .unwrap()["checkpoint_id"]
            .as_str()
            .unwrap(),
    );
    admin
        .batch_execute(&format!(
            "DELETE FROM checkpoint_writes WHERE thread_id = 'basic' AND checkpoint_id = '{newest_basic}';
             DELETE FROM checkpoints WHERE thread_id = 'basic' AND checkpoint_id = '{newest_basic}';"
        ))
        .unwrap();
    let out = rewind(data, &["streams", &url], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("its mirror was made again"),
        "{}",
        text(&out)
    );
    assert_eq!(heads(data)["basic"].0, 11);
}

#[test]
fn staging_a_langgraph_database_killed_between_batches_resumes_and_mirrors_every_checkpoint_once() {
    let Some(server) = Server::start("LangGraph staging resumed") else {
        return;
    };
    server.load("agents", "postgres/langgraph.sql");
    // Thirty more copies of every thread (1,426 checkpoints, three batches of 500).
    server
        .admin("agents")
        .batch_execute(
            "INSERT INTO checkpoint_blobs SELECT 'copy' || g || '-' || thread_id, checkpoint_ns, channel, version, type, blob
               FROM checkpoint_blobs, generate_series(1, 30) g;
             INSERT INTO checkpoint_writes SELECT 'copy' || g || '-' || thread_id, checkpoint_ns, checkpoint_id, task_id, idx, channel, type, blob, task_path
               FROM checkpoint_writes, generate_series(1, 30) g;
             INSERT INTO checkpoints SELECT 'copy' || g || '-' || thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata
               FROM checkpoints, generate_series(1, 30) g;",
        )
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let url = server.url(ADMIN, Some(ADMIN_PASSWORD), "agents");
    let out = rewind(
        data,
        &["streams", &url],
        &[("REWIND_CRASH_AT", "postgres.batch:2")],
    );
    assert!(!out.status.success(), "{}", text(&out));
    // Two batches staged, none mirrored yet.
    let staged = walk(&data.join("mirrors"))
        .into_iter()
        .find(|p| p.to_string_lossy().ends_with(".rewind.staged"))
        .unwrap();
    let count = |table: &str| -> i64 {
        rusqlite::Connection::open(&staged)
            .unwrap()
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(count("checkpoints"), 1_000);
    // The next run goes on from there: every checkpoint once, each copy the same as its
    // thread.
    assert_eq!(events(data, &url), 31 * (46 + 4));
    assert_eq!(count("checkpoints"), 31 * 46);
    assert_eq!(count("writes"), 31 * 308);
    let state = |stream: &str| ok(data, &["state", &url, stream, "--json"], &[]);
    let basic: Value = serde_json::from_str(&state("basic")).unwrap();
    let copy: Value = serde_json::from_str(&state("copy17-basic")).unwrap();
    assert_eq!(basic["state"], copy["state"]);
    let out = ok(data, &["verify", &url], &[]);
    assert!(
        out.contains(&format!(
            "{} checkpoints of the source reproduced exactly",
            rewind::model::group(31 * 46)
        )),
        "{out}"
    );
}

/// Seed 001's tables as the seed gives them on PostgreSQL (its events table, which the seed
/// does not show, in PostgreSQL's types as the shipped mapping describes it).
const SEED_001: &str = "
CREATE TABLE events (
  global_position BIGSERIAL PRIMARY KEY,
  event_id UUID NOT NULL UNIQUE,
  aggregate_id VARCHAR(255) NOT NULL,
  aggregate_type VARCHAR(100) NOT NULL,
  version INTEGER NOT NULL,
  event_type VARCHAR(100) NOT NULL,
  payload JSONB NOT NULL,
  metadata JSONB NOT NULL DEFAULT '{}',
  timestamp TIMESTAMP WITH TIME ZONE NOT NULL,
  UNIQUE (aggregate_id, version));
CREATE TABLE event_snapshots (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  aggregate_id VARCHAR(255) NOT NULL,
  version INTEGER NOT NULL,
  timestamp TIMESTAMP WITH TIME ZONE NOT NULL,
  data JSONB NOT NULL,
  metadata JSONB NOT NULL DEFAULT '{}',
  created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
  updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
  UNIQUE (aggregate_id, version));
CREATE INDEX idx_snapshots_aggregate_version ON event_snapshots (aggregate_id, version DESC);
";

/// The seed 001 rows of an SQLite database copied to the server as the application would
/// have stored them there: JSON as JSONB (a compressed snapshot's text as a JSON string),
/// times as timestamps, ids as UUIDs, and an uncompressed snapshot's checksum taken over its
/// JSONB's text (where the SQLite one held for its text; one that did not is kept, still
/// wrong).
fn copy_seed_001(from: &Path, server: &Server, db: &str) {
    let conn = rusqlite::Connection::open(from).unwrap();
    let mut admin = server.admin(db);
    let mut events = conn
        .prepare("SELECT event_id, aggregate_id, aggregate_type, version, event_type, payload, metadata, timestamp FROM events ORDER BY global_position")
        .unwrap();
    let mut rows = events.query([]).unwrap();
    while let Some(row) = rows.next().unwrap() {
        let text = |i: usize| row.get::<_, String>(i).unwrap();
        admin
            .execute(
                "INSERT INTO events (event_id, aggregate_id, aggregate_type, version, event_type, payload, metadata, timestamp)
                 VALUES (md5($1)::uuid, $2, $3, $4, $5, $6::text::jsonb, $7::text::jsonb, $8::text::timestamptz)",
                &[&text(0), &text(1), &text(2), &(row.get::<_, i64>(3).unwrap() as i32), &text(4), &text(5), &text(6), &text(7)],
            )
            .unwrap();
    }
    let mut snapshots = conn
        .prepare("SELECT id, aggregate_id, version, timestamp, data, metadata FROM event_snapshots")
        .unwrap();
    let mut rows = snapshots.query([]).unwrap();
    while let Some(row) = rows.next().unwrap() {
        let text = |i: usize| row.get::<_, String>(i).unwrap();
        let compressed = text(5).contains("\"compressed\":true");
        let held = text(5).contains(&format!("\"{}\"", crate::seeds::sha256(text(4).as_bytes())));
        let (data, metadata) = if compressed {
            ("to_jsonb($5::text)", "$6::text::jsonb")
        } else if held {
            (
                "$5::text::jsonb",
                "jsonb_set($6::text::jsonb, '{checksum}', to_jsonb(encode(sha256(convert_to(($5::text::jsonb)::text, 'UTF8')), 'hex')))",
            )
        } else {
            ("$5::text::jsonb", "$6::text::jsonb")
        };
        admin
            .execute(
                &format!(
                    "INSERT INTO event_snapshots (id, aggregate_id, version, timestamp, data, metadata)
                     VALUES (md5($1)::uuid, $2, $3, $4::text::timestamptz, {data}, {metadata})"
                ),
                &[&text(0), &text(1), &(row.get::<_, i64>(2).unwrap() as i32), &text(3), &text(4), &text(5)],
            )
            .unwrap();
    }
}

#[test]
fn seed_001_on_postgresql_reads_through_the_shipped_mapping_its_postgres_queries_as_on_sqlite() {
    let Some(server) = Server::start("seed 001 on PostgreSQL through a mapping") else {
        return;
    };
    server.database("workflows", SEED_001);
    server.reader("workflows", "viewer", "viewer-pw-55");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("workflows.db");
    let workflows = crate::seeds::seed_001_with_snapshots(&db);
    copy_seed_001(&db, &server, "workflows");
    let data = dir.path().join("data");
    let url = server.url("viewer", Some("viewer-pw-55"), "workflows");
    // The mapping is named once and kept for the source.
    let listed: Value = serde_json::from_str(&ok(
        &data,
        &["streams", &url, "--map", "seed-001", "--json"],
        &[],
    ))
    .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), workflows.len());
    for (id, states) in &workflows {
        for version in [1, 17, 48] {
            let out = ok(
                &data,
                &["state", &url, id, "--at", &version.to_string(), "--json"],
                &[],
            );
            let got: Value = serde_json::from_str(&out).unwrap();
            assert_eq!(got["state"], states[version], "{id} v{version}");
        }
    }
    // The times are the events' own (TIMESTAMPTZ read as RFC 3339).
    let log = ok(
        &data,
        &["log", &url, "workflow-1", "--tail", "1", "--json"],
        &[],
    );
    assert!(log.contains("2026-03-01T09:"), "{log}");
    // The snapshots: the same ones found bad, and for the same reasons, as on SQLite.
    let out = rewind(&data, &["verify", &url, "--json"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let found = crate::seeds::source_findings(&report);
    let expect = [
        ("workflow-2", 10, "is corrupt: its sha256 checksum is"),
        ("workflow-2", 20, "builds on the snapshot at version 10"),
        (
            "workflow-3",
            30,
            "is not the state the events give at version 30",
        ),
        ("workflow-3", 40, "builds on the snapshot at version 30"),
        ("workflow-4", 40, "builds on a snapshot at version 35"),
        ("workflow-5", 30, "cannot be read: not base64"),
        ("workflow-5", 40, "builds on the snapshot at version 30"),
    ];
    assert_eq!(found.len(), expect.len(), "{found:#?}");
    for ((stream, version, detail), (want_stream, want_version, want)) in found.iter().zip(expect) {
        assert_eq!((stream.as_str(), *version), (want_stream, want_version));
        assert!(detail.contains(want), "{stream} v{version}: {detail}");
    }
    assert!(
        report["notes"]
            .to_string()
            .contains("17 of the source's 24 snapshots are the state the events give"),
        "{}",
        report["notes"]
    );
    // An event the application appends is read by the next command, and the mirror is not
    // made again for it.
    server
        .admin("workflows")
        .execute(
            "INSERT INTO events (event_id, aggregate_id, aggregate_type, version, event_type, payload, timestamp)
             VALUES (md5('new')::uuid, 'workflow-1', 'Workflow', 49, 'WorkflowFinished', '{\"status\": \"finished\"}', '2026-03-02T08:00:00Z')",
            &[],
        )
        .unwrap();
    let out = rewind(&data, &["state", &url, "workflow-1", "--json"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(out.stderr.is_empty(), "{}", text(&out));
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got["state"]["status"], "finished");
    assert_eq!(got["provenance"]["version"], 49);
    // A mapping without PostgreSQL text for a query that needs it says which.
    let own = dir.path().join("own.toml");
    std::fs::write(
        &own,
        "[events]\nstream = \"aggregate_id\"\ntype = \"event_type\"\ndata = \"payload\"\n[events.query]\nsqlite = \"SELECT * FROM events\"\n",
    )
    .unwrap();
    let err = fails(
        &data,
        &["streams", &url, "--map", own.to_str().unwrap()],
        &[],
    );
    assert!(
        err.contains("events.query") && err.contains("gives no postgres query"),
        "{err}"
    );
}

#[test]
fn seed_002_on_postgresql_reads_prismas_tables_with_the_same_queries_and_gives_what_sqlite_gives() {
    let Some(server) = Server::start("seed 002 on PostgreSQL through a mapping") else {
        return;
    };
    // Prisma's PostgreSQL tables for the same models: Json is JSONB, DateTime TIMESTAMP(3).
    server.database(
        "streaming",
        r#"CREATE TABLE "EventLog" ("id" SERIAL PRIMARY KEY, "streamId" TEXT NOT NULL,
             "type" TEXT NOT NULL, "payload" JSONB NOT NULL,
             "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP);
           CREATE TABLE "StreamArchive" ("id" INTEGER PRIMARY KEY, "streamId" TEXT NOT NULL,
             "type" TEXT NOT NULL, "payload" JSONB NOT NULL, "createdAt" TIMESTAMP(3) NOT NULL,
             "archivedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP);
           CREATE TABLE "StreamSnapshot" ("id" SERIAL PRIMARY KEY, "streamId" TEXT NOT NULL,
             "month" TEXT NOT NULL, "state" JSONB NOT NULL, "lastEventId" INTEGER NOT NULL,
             "eventCount" INTEGER NOT NULL, "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP);
           CREATE UNIQUE INDEX "StreamSnapshot_streamId_month_key" ON "StreamSnapshot"("streamId", "month");"#,
    );
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("streaming.db");
    let rows = crate::seeds::seed_002(&db, 4, 120);
    let conn = rusqlite::Connection::open(&db).unwrap();
    // February's snapshots, and the archive job caught between copying and deleting: rows
    // before mid-February are in both tables.
    crate::seeds::seed_002_snapshot(&conn, &rows, "2026-02", 1_769_904_000_000);
    crate::seeds::seed_002_archive(&conn, 1_771_113_600_000, false);
    let mut admin = server.admin("streaming");
    let at = |ms: &str| format!("(to_timestamp({ms}::int8 / 1000.0) AT TIME ZONE 'UTC')");
    for (table, columns, values) in [
        (
            "EventLog",
            r#""id", "streamId", "type", "payload", "createdAt""#,
            format!("$1::int8::int4, $2, $3, $4::text::jsonb, {}", at("$5")),
        ),
        (
            "StreamArchive",
            r#""id", "streamId", "type", "payload", "createdAt", "archivedAt""#,
            format!(
                "$1::int8::int4, $2, $3, $4::text::jsonb, {}, {}",
                at("$5"),
                at("$6")
            ),
        ),
        (
            "StreamSnapshot",
            r#""id", "streamId", "month", "state", "lastEventId", "eventCount", "createdAt""#,
            format!(
                "$1::int8::int4, $2, $3, $4::text::jsonb, $5::int8::int4, $6::int8::int4, {}",
                at("$7")
            ),
        ),
    ] {
        let width = columns.split(',').count();
        let mut read = conn
            .prepare(&format!("SELECT {columns} FROM \"{table}\""))
            .unwrap();
        let mut got = read.query([]).unwrap();
        while let Some(row) = got.next().unwrap() {
            let values_of: Vec<Box<dyn postgres::types::ToSql + Sync>> = (0..width)
                .map(|i| -> Box<dyn postgres::types::ToSql + Sync> {
                    match row.get_ref(i).unwrap() {
                        rusqlite::types::ValueRef::Integer(n) => Box::new(n),
                        other => Box::new(
                            String::from_utf8_lossy(other.as_bytes().unwrap()).into_owned(),
                        ),
                    }
                })
                .collect();
            let params: Vec<&(dyn postgres::types::ToSql + Sync)> =
                values_of.iter().map(|b| b.as_ref()).collect();
            admin
                .execute(
                    &format!("INSERT INTO \"{table}\" ({columns}) VALUES ({values})"),
                    &params,
                )
                .unwrap();
        }
    }
    drop(conn);
    let data = dir.path().join("data");
    let url = server.url(ADMIN, Some(ADMIN_PASSWORD), "streaming");
    let file = db.to_str().unwrap();
    let json = |source: &str, args: &[&str]| -> Value {
        let mut all = vec![args[0], source];
        all.extend(&args[1..]);
        serde_json::from_str(&ok(&data, &all, &[])).unwrap()
    };
    ok(&data, &["streams", file, "--map", "seed-002"], &[]);
    ok(&data, &["streams", &url, "--map", "seed-002"], &[]);
    let streams = json(file, &["streams", "--json"]);
    assert_eq!(
        json(&url, &["streams", "--json"]).as_array().unwrap().len(),
        4
    );
    for stream in streams.as_array().unwrap() {
        let name = stream["name"].as_str().unwrap();
        assert_eq!(
            json(&url, &["log", name, "--json"]),
            json(file, &["log", name, "--json"]),
            "{name}"
        );
        for version in ["5", "17"] {
            assert_eq!(
                json(&url, &["state", name, "--at", version, "--json"])["state"],
                json(file, &["state", name, "--at", version, "--json"])["state"],
                "{name} v{version}"
            );
        }
    }
    let notes = |source: &str| json(source, &["verify", "--json"])["notes"].clone();
    assert!(
        notes(&url)
            .to_string()
            .contains("4 of the source's 4 snapshots are the state the events give"),
        "{}",
        notes(&url)
    );
}

#[test]
fn a_source_listened_on_is_quiet_until_its_channel_is_notified_and_read_again_after() {
    use rewind::source::postgres::{Spec, give_back, listen, quiet, read_whole, take};
    let Some(server) = Server::start("LISTEN on a source's channel") else {
        return;
    };
    server.load("bank", "postgres/bank.sql");
    let url = server.url(ADMIN, Some(ADMIN_PASSWORD), "bank");
    let spec = Spec::parse(&url, &|_| None, &|_| None).unwrap();
    // Nothing read yet: not quiet.
    assert_eq!(quiet(&spec, "{}"), None);
    let mut client = take(&spec).unwrap();
    listen(&spec, &mut client, "bank_events").unwrap();
    give_back(&spec, client);
    assert_eq!(quiet(&spec, "{}"), None, "listening, but not read yet");
    read_whole(&spec, "eventsourcing", "{}".into());
    assert_eq!(quiet(&spec, "{}"), Some("eventsourcing"));
    // Other settings for the source (a reducer set): read again.
    assert_eq!(quiet(&spec, "{\"reducer\":\"merge\"}"), None);
    // A write that notifies (as eventsourcing's insert function does) ends the quiet.
    server
        .admin("bank")
        .batch_execute("BEGIN; NOTIFY bank_events; COMMIT;")
        .unwrap();
    // Well before RECHECK (30 s) ends the quiet anyway.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while quiet(&spec, "{}").is_some() {
        assert!(
            std::time::Instant::now() < deadline,
            "the notification was not read"
        );
        std::thread::yield_now();
    }
    // And it stays ended until the source is read whole again.
    assert_eq!(quiet(&spec, "{}"), None);
    read_whole(&spec, "eventsourcing", "{}".into());
    assert_eq!(quiet(&spec, "{}"), Some("eventsourcing"));
}

/// A CA for clients, and a client certificate it signed naming `user`: (CA, certificate,
/// key), PEM.
fn client_certificate(user: &str) -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "rewind test client CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, user);
    let cert = params.signed_by(&key, &issuer).unwrap();
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}

#[test]
fn a_client_certificate_is_sent_from_the_url_the_environment_or_home_and_a_key_others_may_read_is_refused()
 {
    let (_, cert, key) = certificates(&["127.0.0.1"]);
    let (clients, client_cert, client_key) = client_certificate(ADMIN);
    let Some(server) =
        Server::start_tls_clients("PostgreSQL client certificates", &cert, &key, &clients)
    else {
        return;
    };
    server.load("bank", "postgres/bank.sql");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let home = data.join("home");
    std::fs::create_dir_all(home.join(".postgresql")).unwrap();
    let (cert_file, key_file) = (data.join("me.crt"), data.join("me.key"));
    std::fs::write(&cert_file, &client_cert).unwrap();
    std::fs::write(&key_file, &client_key).unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let home_text = home.to_str().unwrap();
    // No password: the certificate is the authentication.
    let url = server.url(ADMIN, None, "bank");
    let env = [("HOME", home_text)];
    // None sent: refused, said.
    let err = fails(data, &["streams", &format!("{url}?sslmode=require")], &env);
    assert!(
        err.contains("requires a valid client certificate") && err.contains("PGSSLCERT"),
        "{err}"
    );
    // In the URL.
    let with = format!(
        "{url}?sslmode=require&sslcert={}&sslkey={}",
        cert_file.display(),
        key_file.display()
    );
    assert_eq!(ok(data, &["streams", &with], &env).lines().count(), 7);
    // In the environment.
    let listed = ok(
        data,
        &["streams", &format!("{url}?sslmode=require")],
        &[
            ("HOME", home_text),
            ("PGSSLCERT", cert_file.to_str().unwrap()),
            ("PGSSLKEY", key_file.to_str().unwrap()),
        ],
    );
    assert_eq!(listed.lines().count(), 7);
    // Where libpq looks by default.
    std::fs::copy(&cert_file, home.join(".postgresql/postgresql.crt")).unwrap();
    std::fs::copy(&key_file, home.join(".postgresql/postgresql.key")).unwrap();
    let listed = ok(data, &["streams", &format!("{url}?sslmode=require")], &env);
    assert_eq!(listed.lines().count(), 7);
    // A key others may read is refused before anything is sent; a certificate without its
    // key says where the key was looked for.
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = fails(data, &["streams", &with], &env);
    assert!(
        err.contains("may be read by others") && err.contains("0600"),
        "{err}"
    );
    let err = fails(
        data,
        &[
            "streams",
            &format!(
                "{url}?sslmode=require&sslcert={}&sslkey={}/none.key",
                cert_file.display(),
                data.display()
            ),
        ],
        &env,
    );
    assert!(
        err.contains("is there, but not its key") && err.contains("none.key"),
        "{err}"
    );
}
