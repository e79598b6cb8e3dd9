//! A PostgreSQL server as a source: the `postgres://` URL read as libpq reads it (with the
//! `PG*` variables and `~/.pgpass` filling what it leaves out), the connection made
//! read-only with a statement timeout, and the server's errors said with the host, database
//! and table they concern. The password is never part of anything shown or kept: a source
//! is named by [`Spec::shown`].
//!
//! What is read from the tables is the mirror's business (`mirror::postgres`).

use std::path::Path;
use std::time::Duration;

/// Whether a source argument is a server URL rather than a file.
pub fn is_url(text: &str) -> bool {
    text.starts_with("postgres://") || text.starts_with("postgresql://")
}

/// The URL a source path is, if it is one.
pub fn url_of(path: &Path) -> Option<&str> {
    path.to_str().filter(|t| is_url(t))
}

/// `text` with the password of every server URL in it taken out
/// (`postgres://ann:pw@host/db` → `postgres://ann@host/db`): what a message that names the
/// argument as given may hold.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = ["postgresql://", "postgres://"]
        .iter()
        .filter_map(|scheme| rest.find(scheme).map(|i| (i, scheme.len())))
        .min()
    {
        let (start, scheme) = at;
        out.push_str(&rest[..start + scheme]);
        rest = &rest[start + scheme..];
        let end = rest
            .find(|c: char| c == '/' || c == '?' || c.is_whitespace())
            .unwrap_or(rest.len());
        let authority = &rest[..end];
        match authority.rsplit_once('@') {
            Some((info, host)) => {
                out.push_str(info.split_once(':').map_or(info, |(user, _)| user));
                out.push('@');
                out.push_str(host);
            }
            None => out.push_str(authority),
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// How a connection asks for TLS (`sslmode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(text: &str) -> Result<Self, String> {
        Ok(match text {
            "disable" => Self::Disable,
            "allow" => Self::Allow,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            other => {
                return Err(format!(
                    "sslmode={other:?}: not a mode (disable, allow, prefer, require, verify-ca, verify-full)"
                ));
            }
        })
    }
}

/// Where and as whom to connect: the URL, then the environment, then libpq's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// A host name, an address, or a folder holding the server's socket (starts with `/`).
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Option<String>,
    pub dbname: String,
    pub sslmode: SslMode,
    /// How long to wait for the server to answer a connection.
    pub connect_timeout: Duration,
    /// The table to read where the database holds several of a format (rewind's own
    /// parameter, `?rewind_table=NAME`).
    pub table: Option<String>,
    /// Server settings for the session (`options`, `PGOPTIONS`: `-c name=value …`), after
    /// rewind's own, so `-c statement_timeout=5s` changes the timeout.
    pub options: Option<String>,
    /// The certificates (PEM) a server's must chain to: `sslrootcert`, `PGSSLROOTCERT`, or
    /// `~/.postgresql/root.crt` (which need not exist).
    pub root_cert: Option<std::path::PathBuf>,
    /// The client's certificate (PEM) and its key, sent where the file exists: `sslcert` and
    /// `sslkey`, `PGSSLCERT` and `PGSSLKEY`, or `~/.postgresql/postgresql.crt` and `.key`.
    pub client_cert: Option<std::path::PathBuf>,
    pub client_key: Option<std::path::PathBuf>,
}

/// Waited for a connection when neither the URL nor `PGCONNECT_TIMEOUT` says.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Parameters a URL may carry, as libpq names them, besides rewind's own `rewind_table`.
const PARAMETERS: [&str; 13] = [
    "options",
    "host",
    "port",
    "user",
    "password",
    "dbname",
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "connect_timeout",
    "application_name",
    "rewind_table",
];

impl Spec {
    /// Reads `url` as libpq does, `var` giving the environment (`PGHOST`, `PGPORT`,
    /// `PGUSER`, `PGPASSWORD`, `PGDATABASE`, `PGSSLMODE`, `PGCONNECT_TIMEOUT`, `PGPASSFILE`)
    /// and `pgpass` the text of the password file where the URL and `PGPASSWORD` give no
    /// password (called only then, with the file's path).
    pub fn parse(
        url: &str,
        var: &dyn Fn(&str) -> Option<String>,
        pgpass: &dyn Fn(&Path) -> Option<String>,
    ) -> Result<Self, String> {
        let rest = url
            .strip_prefix("postgresql://")
            .or_else(|| url.strip_prefix("postgres://"))
            .ok_or("a server source starts with postgres:// or postgresql://")?;
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let mut user = None;
        let mut password = None;
        if let Some(info) = userinfo {
            let (u, p) = match info.split_once(':') {
                Some((u, p)) => (u, Some(p)),
                None => (info, None),
            };
            if !u.is_empty() {
                user = Some(decode(u)?);
            }
            if let Some(p) = p {
                password = Some(decode(p)?);
            }
        }
        if hostport.contains(',') {
            return Err("several hosts in one URL: rewind connects to one".into());
        }
        let (host, port) = split_host_port(hostport)?;
        let mut host = (!host.is_empty()).then(|| decode(host)).transpose()?;
        let mut port = port.map(str::to_owned);
        let mut dbname = (!path.is_empty()).then(|| decode(path)).transpose()?;
        let mut sslmode = None;
        let mut timeout = None;
        let mut table = None;
        let mut root_cert = None;
        let mut client_cert = None;
        let mut client_key = None;
        let mut options = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| format!("{pair:?} in the URL's parameters has no value"))?;
            let value = decode(value)?;
            match key {
                "host" => host = Some(value),
                "port" => port = Some(value),
                "user" => user = Some(value),
                "password" => password = Some(value),
                "dbname" => dbname = Some(value),
                "sslmode" => sslmode = Some(value),
                "sslrootcert" => root_cert = Some(value),
                "sslcert" => client_cert = Some(value),
                "sslkey" => client_key = Some(value),
                "options" => options = Some(value),
                "connect_timeout" => timeout = Some(value),
                "application_name" => {}
                "rewind_table" => table = Some(value),
                other => {
                    return Err(format!(
                        "the URL's parameter {other:?} is not one rewind knows ({})",
                        PARAMETERS.join(", ")
                    ));
                }
            }
        }
        let host = host
            .or_else(|| var("PGHOST"))
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| {
                if Path::new("/var/run/postgresql").is_dir() {
                    "/var/run/postgresql".into()
                } else {
                    "localhost".into()
                }
            });
        let port = match port.or_else(|| var("PGPORT")).filter(|p| !p.is_empty()) {
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("port {p:?} is not a port number"))?,
            None => 5432,
        };
        let user = user
            .or_else(|| var("PGUSER"))
            .filter(|u| !u.is_empty())
            .or_else(|| var("USER"))
            .filter(|u| !u.is_empty())
            .ok_or("no user name: give one in the URL (postgres://USER@HOST/DB) or PGUSER")?;
        let dbname = dbname
            .or_else(|| var("PGDATABASE"))
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| user.clone());
        let sslmode = SslMode::parse(
            &sslmode
                .or_else(|| var("PGSSLMODE"))
                .unwrap_or_else(|| "prefer".into()),
        )?;
        let connect_timeout = match timeout.or_else(|| var("PGCONNECT_TIMEOUT")) {
            Some(t) => {
                let secs: u64 = t
                    .trim()
                    .parse()
                    .map_err(|_| format!("connect_timeout {t:?} is not a number of seconds"))?;
                // As libpq: 0 waits for ever, and less than 2 s is 2 s.
                if secs == 0 {
                    Duration::from_secs(u64::from(u32::MAX))
                } else {
                    Duration::from_secs(secs.max(2))
                }
            }
            None => CONNECT_TIMEOUT,
        };
        let password = password.or_else(|| var("PGPASSWORD")).or_else(|| {
            let file = var("PGPASSFILE")
                .map(std::path::PathBuf::from)
                .or_else(|| var("HOME").map(|h| Path::new(&h).join(".pgpass")))?;
            pgpass_lookup(&pgpass(&file)?, &host, port, &dbname, &user)
        });
        let root_cert = root_cert
            .or_else(|| var("PGSSLROOTCERT"))
            .map(std::path::PathBuf::from)
            .or_else(|| var("HOME").map(|h| Path::new(&h).join(".postgresql/root.crt")));
        let in_home =
            |name: &str| var("HOME").map(|h| Path::new(&h).join(".postgresql").join(name));
        let client_cert = client_cert
            .or_else(|| var("PGSSLCERT"))
            .map(std::path::PathBuf::from)
            .or_else(|| in_home("postgresql.crt"));
        let client_key = client_key
            .or_else(|| var("PGSSLKEY"))
            .map(std::path::PathBuf::from)
            .or_else(|| in_home("postgresql.key"));
        let options = options
            .or_else(|| var("PGOPTIONS"))
            .filter(|o| !o.trim().is_empty());
        Ok(Self {
            host,
            port,
            user,
            password,
            dbname,
            sslmode,
            connect_timeout,
            table,
            options,
            root_cert,
            client_cert,
            client_key,
        })
    }

    /// [`parse`](Self::parse) with this process's environment and files.
    pub fn from_env(url: &str) -> Result<Self, String> {
        Self::parse(url, &|name| std::env::var(name).ok(), &|file| {
            std::fs::read_to_string(file).ok()
        })
    }

    /// The source as shown and kept: `postgres://USER@HOST:PORT/DB`, never the password;
    /// a URL that reads back as the same user, host, port and database.
    pub fn shown(&self) -> String {
        let host = if self.host.parse::<std::net::Ipv6Addr>().is_ok() {
            format!("[{}]", self.host)
        } else {
            encode(&self.host)
        };
        let mut text = format!(
            "postgres://{}@{host}:{}/{}",
            encode(&self.user),
            self.port,
            encode(&self.dbname)
        );
        if let Some(table) = &self.table {
            text.push_str("?rewind_table=");
            text.push_str(&encode(table));
        }
        text
    }
}

/// `text` with what would end or change a URL's part (`:`, `@`, `/`, `?`, `&`, `=`, `#`, `%`,
/// `[`, `]`, `,`, spaces and control characters) as `%XX`.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(
            c,
            ':' | '@' | '/' | '?' | '&' | '=' | '#' | '%' | '[' | ']' | ','
        ) || c.is_whitespace()
            || c.is_control()
        {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `HOST[:PORT]` or `[V6]:PORT`.
fn split_host_port(text: &str) -> Result<(&str, Option<&str>), String> {
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or("an IPv6 address in the URL lacks its closing ]")?;
        return match after {
            "" => Ok((host, None)),
            _ => after
                .strip_prefix(':')
                .map(|p| (host, Some(p)))
                .ok_or_else(|| format!("{after:?} after the address in the URL")),
        };
    }
    Ok(match text.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (text, None),
    })
}

/// `%XX` decoded; the result must be UTF-8.
fn decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| "a % in the URL not followed by two hex digits".to_owned())?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "the URL decodes to text that is not UTF-8".into())
}

/// The password of the first line of a `.pgpass` text that matches (`host:port:db:user:pw`,
/// `*` matching anything, `\:` and `\\` escaped); a socket folder matches `localhost`, as
/// libpq has it.
pub fn pgpass_lookup(
    text: &str,
    host: &str,
    port: u16,
    dbname: &str,
    user: &str,
) -> Option<String> {
    let host = if host.starts_with('/') {
        "localhost"
    } else {
        host
    };
    let port = port.to_string();
    let wanted = [host, port.as_str(), dbname, user];
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let fields = pgpass_fields(line);
        if fields.len() != 5 {
            continue;
        }
        if fields[..4]
            .iter()
            .zip(wanted)
            .all(|(field, want)| field == "*" || field == want)
        {
            return Some(fields[4].clone());
        }
    }
    None
}

/// A `.pgpass` line split at its unescaped colons, the escapes removed (the password is the
/// rest of the line).
fn pgpass_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let (Some(next), Some(f)) = (chars.next(), fields.last_mut()) {
                    f.push(next);
                }
            }
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => {
                if let Some(f) = fields.last_mut() {
                    f.push(c);
                }
            }
        }
    }
    fields
}

/// How long one statement may run before the server cancels it.
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(60);

/// A connection to the server of `spec`, every transaction read-only by default and every
/// statement given [`STATEMENT_TIMEOUT`]; `Err` is the message for the user.
pub fn connect(spec: &Spec) -> Result<postgres::Client, String> {
    let mut config = postgres::Config::new();
    if spec.host.starts_with('/') {
        config.host_path(&spec.host);
    } else {
        config.host(&spec.host);
    }
    config
        .port(spec.port)
        .user(&spec.user)
        .dbname(&spec.dbname)
        .application_name("rewind")
        .connect_timeout(spec.connect_timeout)
        .options(&format!(
            "-c default_transaction_read_only=on -c statement_timeout={} {}",
            STATEMENT_TIMEOUT.as_millis(),
            spec.options.as_deref().unwrap_or("")
        ));
    if let Some(password) = &spec.password {
        config.password(password);
    }
    let connected = match spec.sslmode {
        // A socket is never encrypted, as libpq has it.
        SslMode::Disable | SslMode::Allow => config.connect(postgres::NoTls),
        _ if spec.host.starts_with('/') => config.connect(postgres::NoTls),
        mode => {
            let tls = tls::connector(spec, mode)?;
            config.ssl_mode(if mode == SslMode::Prefer {
                postgres::config::SslMode::Prefer
            } else {
                postgres::config::SslMode::Require
            });
            config.connect(tls)
        }
    };
    connected.map_err(|e| describe(spec, None, &e))
}

/// Connections given back after a sync that went well, kept for the next sync of the same
/// source in this process (a debugger following a server asks twice a second).
static HELD: std::sync::Mutex<Vec<(Spec, postgres::Client)>> = std::sync::Mutex::new(Vec::new());

/// A connection for `spec`: one given back earlier and still open, or a new one.
pub fn take(spec: &Spec) -> Result<postgres::Client, String> {
    let held = {
        let mut held = HELD
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        held.iter()
            .position(|(s, _)| s == spec)
            .map(|i| held.swap_remove(i).1)
    };
    match held {
        Some(client) if !client.is_closed() => Ok(client),
        _ => {
            // A new connection listens on nothing yet.
            forget_listening(spec);
            connect(spec)
        }
    }
}

/// Keeps a connection that served well for the next [`take`] of the same source.
pub fn give_back(spec: &Spec, client: postgres::Client) {
    if !client.is_closed() {
        HELD.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((spec.clone(), client));
    }
}

/// How long a source a channel says nothing of is trusted to be unchanged: past this, it is
/// read again (a writer that does not NOTIFY, such as eventsourcing taking a snapshot, is seen
/// then).
pub const RECHECK: Duration = Duration::from_secs(30);

/// A connection LISTENing on a source's channel: what its last whole read was (the format
/// read, and the user's settings for the source it was read with) and when.
struct Listening {
    spec: Spec,
    channel: String,
    read: Option<(std::time::Instant, &'static str, String)>,
}

static LISTENING: std::sync::Mutex<Vec<Listening>> = std::sync::Mutex::new(Vec::new());

fn listening() -> std::sync::MutexGuard<'static, Vec<Listening>> {
    LISTENING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn forget_listening(spec: &Spec) {
    listening().retain(|l| l.spec != *spec);
}

/// Makes `client` LISTEN on `channel` (once per connection), before a sync reads the source:
/// a write committed after the sync's snapshot is then told by a notification.
pub fn listen(spec: &Spec, client: &mut postgres::Client, channel: &str) -> Result<(), String> {
    if listening()
        .iter()
        .any(|l| l.spec == *spec && l.channel == channel)
    {
        return Ok(());
    }
    client
        .batch_execute(&format!("LISTEN \"{}\"", channel.replace('"', "\"\"")))
        .map_err(|e| describe(spec, None, &e))?;
    forget_listening(spec);
    listening().push(Listening {
        spec: spec.clone(),
        channel: channel.to_owned(),
        read: None,
    });
    Ok(())
}

/// Records that the source listened on was read whole just now, as `format`, with the
/// user's `settings` for it (as text).
pub fn read_whole(spec: &Spec, format: &'static str, settings: String) {
    for l in listening().iter_mut().filter(|l| l.spec == *spec) {
        l.read = Some((std::time::Instant::now(), format, settings.clone()));
    }
}

/// Whether nothing was written to the source since it was last read whole, as its channel
/// tells: only while the connection that LISTENs is kept open, no notification has come on
/// it, the read is less than [`RECHECK`] old, and the user's settings are the same. Returns
/// the format read then. The notifications that came are taken.
pub fn quiet(spec: &Spec, settings: &str) -> Option<&'static str> {
    use postgres::fallible_iterator::FallibleIterator as _;
    let format = {
        let listened = listening();
        let l = listened.iter().find(|l| l.spec == *spec)?;
        let (at, format, read_with) = l.read.as_ref()?;
        (at.elapsed() < RECHECK && read_with == settings).then_some(*format)?
    };
    let any = {
        let mut held = HELD
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (_, client) = held.iter_mut().find(|(s, c)| s == spec && !c.is_closed())?;
        let mut came = client.notifications();
        // A wait of a millisecond, not none: the connection's runtime reads the socket only
        // when it waits, so without one a notification already sent is never seen.
        let mut iter = came.timeout_iter(Duration::from_millis(1));
        let mut any = false;
        loop {
            match iter.next() {
                Ok(Some(_)) => any = true,
                Ok(None) => break,
                Err(_) => return None,
            }
        }
        any
    };
    if any {
        // Read again before trusting the channel: until a sync goes well, it is not quiet.
        for l in listening().iter_mut().filter(|l| l.spec == *spec) {
            l.read = None;
        }
        return None;
    }
    Some(format)
}

/// TLS as libpq's modes ask for it: `require` encrypts without checking the certificate
/// (unless root certificates are there, which make it `verify-ca`), `verify-ca` checks that
/// the certificate chains to the root certificates, `verify-full` that and that it names the
/// host. rustls with the *ring* provider: no system OpenSSL.
mod tls {
    use std::sync::Arc;

    use rustls::client::WebPkiServerVerifier;
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::crypto::WebPkiSupportedAlgorithms;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
    use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

    use super::{Spec, SslMode};

    pub fn connector(
        spec: &Spec,
        mode: SslMode,
    ) -> Result<tokio_postgres_rustls::MakeRustlsConnect, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let algorithms = provider.signature_verification_algorithms;
        let roots = spec.root_cert.as_deref().filter(|p| p.exists());
        let verifier: Arc<dyn ServerCertVerifier> = match (mode, roots) {
            (SslMode::Disable | SslMode::Allow | SslMode::Prefer | SslMode::Require, None)
            | (SslMode::Disable | SslMode::Allow | SslMode::Prefer, Some(_)) => {
                Arc::new(Unchecked(algorithms))
            }
            (SslMode::VerifyCa | SslMode::VerifyFull, None) => {
                return Err(format!(
                    "{}: sslmode={}: no root certificates to check the server's against: {} does not exist (name a file of them with sslrootcert=FILE or PGSSLROOTCERT)",
                    spec.shown(),
                    if mode == SslMode::VerifyCa {
                        "verify-ca"
                    } else {
                        "verify-full"
                    },
                    spec.root_cert.as_deref().map_or_else(
                        || "~/.postgresql/root.crt".into(),
                        |p| p.display().to_string()
                    )
                ));
            }
            (_, Some(file)) => {
                let mut store = rustls::RootCertStore::empty();
                let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(file)
                    .and_then(Iterator::collect)
                    .map_err(|e| {
                        format!(
                            "{}: the root certificates in {}: {e}",
                            spec.shown(),
                            file.display()
                        )
                    })?;
                let (added, _) = store.add_parsable_certificates(certs);
                if added == 0 {
                    return Err(format!(
                        "{}: {} holds no certificate rewind can use as a root",
                        spec.shown(),
                        file.display()
                    ));
                }
                let full =
                    WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider.clone())
                        .build()
                        .map_err(|e| format!("{}: the root certificates: {e}", spec.shown()))?;
                if mode == SslMode::VerifyFull {
                    full
                } else {
                    Arc::new(AnyName(full))
                }
            }
        };
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("{}: TLS: {e}", spec.shown()))?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let config = match client_identity(spec)? {
            Some((certs, key)) => builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| format!("{}: the client certificate and key: {e}", spec.shown()))?,
            None => builder.with_no_client_auth(),
        };
        Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
    }

    /// The client's certificate chain and key, where its certificate file exists (as libpq:
    /// none sent otherwise). A key that others may read is refused, as libpq refuses it.
    #[allow(clippy::type_complexity)]
    fn client_identity(
        spec: &Spec,
    ) -> Result<Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>, String> {
        let Some(cert) = spec.client_cert.as_deref().filter(|p| p.exists()) else {
            return Ok(None);
        };
        let shown = spec.shown();
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
            .and_then(Iterator::collect)
            .map_err(|e| format!("{shown}: the client certificate {}: {e}", cert.display()))?;
        if certs.is_empty() {
            return Err(format!(
                "{shown}: the client certificate {} holds no certificate",
                cert.display()
            ));
        }
        let Some(key) = spec.client_key.as_deref().filter(|p| p.exists()) else {
            return Err(format!(
                "{shown}: the client certificate {} is there, but not its key{} (name it with sslkey=FILE or PGSSLKEY)",
                cert.display(),
                spec.client_key
                    .as_deref()
                    .map_or_else(String::new, |k| format!(" {}", k.display()))
            ));
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let meta = std::fs::metadata(key)
                .map_err(|e| format!("{shown}: the client key {}: {e}", key.display()))?;
            let allowed = if meta.uid() == 0 { 0o037 } else { 0o077 };
            if meta.mode() & allowed != 0 {
                return Err(format!(
                    "{shown}: the client key {} may be read by others (mode {:o}); make it u=rw (0600) or less, as libpq asks",
                    key.display(),
                    meta.mode() & 0o777
                ));
            }
        }
        let key = PrivateKeyDer::from_pem_file(key)
            .map_err(|e| format!("{shown}: the client key {}: {e}", key.display()))?;
        Ok(Some((certs, key)))
    }

    /// `require`: any certificate, the handshake's signatures still checked.
    #[derive(Debug)]
    struct Unchecked(WebPkiSupportedAlgorithms);

    impl ServerCertVerifier for Unchecked {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.supported_schemes()
        }
    }

    /// `verify-ca`: the chain checked, the name not.
    #[derive(Debug)]
    struct AnyName(Arc<WebPkiServerVerifier>);

    impl ServerCertVerifier for AnyName {
        fn verify_server_cert(
            &self,
            end_entity: &CertificateDer<'_>,
            intermediates: &[CertificateDer<'_>],
            name: &ServerName<'_>,
            ocsp: &[u8],
            now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            match self
                .0
                .verify_server_cert(end_entity, intermediates, name, ocsp, now)
            {
                Err(rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForName
                    | CertificateError::NotValidForNameContext { .. },
                )) => Ok(ServerCertVerified::assertion()),
                other => other,
            }
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            self.0.verify_tls12_signature(message, cert, dss)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            self.0.verify_tls13_signature(message, cert, dss)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.supported_verify_schemes()
        }
    }
}

/// The user's message for a server error: the source (no password), the table where one is
/// concerned, and what went wrong, in the server's words where it gave some.
pub fn describe(spec: &Spec, table: Option<&str>, error: &postgres::Error) -> String {
    let at = match table {
        Some(table) => format!("{}, table {table}", spec.shown()),
        None => spec.shown(),
    };
    if let Some(db) = error.as_db_error() {
        let hint = match db.code().code() {
            "28000" if db.message().contains("certificate") => {
                "; the client's certificate and key come from sslcert=FILE&sslkey=FILE, PGSSLCERT and PGSSLKEY, or ~/.postgresql/postgresql.crt and .key"
            }
            "28P01" | "28000" => {
                "; the password comes from the URL, PGPASSWORD or ~/.pgpass (PGPASSFILE)"
            }
            "57014" => {
                "; a statement ran past the timeout (60 s unless options=-c statement_timeout=… or PGOPTIONS says otherwise)"
            }
            "42P01" | "42703" => "; the table does not have the shape rewind expected",
            "42501" => "; the role needs SELECT on the tables rewind reads",
            "57P01" | "57P02" | "57P03" => {
                "; the connection ended: the mirror keeps what was read, and the next run goes on from there"
            }
            _ => "",
        };
        return format!("{at}: {}{hint}", db.message());
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let said = cause.to_string();
        if !text.contains(&said) {
            text = format!("{text}: {said}");
        }
        source = cause.source();
    }
    if error.is_closed() {
        text.push_str(
            " (the connection was closed: the mirror keeps what was read, and the next run goes on from there)",
        );
    }
    format!("{at}: {text}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    fn no_file(_: &Path) -> Option<String> {
        None
    }

    #[test]
    fn a_url_gives_each_part_decoded_and_the_environment_fills_the_rest() {
        let spec = Spec::parse(
            "postgresql://ann%40corp:p%3Ass@db.example:6543/orders%2Fprod?sslmode=disable&connect_timeout=1",
            &env(&[("PGHOST", "ignored"), ("PGUSER", "ignored")]),
            &no_file,
        )
        .unwrap();
        assert_eq!(spec.host, "db.example");
        assert_eq!(spec.port, 6543);
        assert_eq!(spec.user, "ann@corp");
        assert_eq!(spec.password.as_deref(), Some("p:ss"));
        assert_eq!(spec.dbname, "orders/prod");
        assert_eq!(spec.sslmode, SslMode::Disable);
        assert_eq!(spec.connect_timeout, Duration::from_secs(2));
        assert_eq!(
            spec.shown(),
            "postgres://ann%40corp@db.example:6543/orders%2Fprod"
        );
        let spec = Spec::parse(
            "postgres://",
            &env(&[
                ("PGHOST", "10.0.0.7"),
                ("PGPORT", "5433"),
                ("PGUSER", "bob"),
                ("PGSSLMODE", "verify-full"),
            ]),
            &no_file,
        )
        .unwrap();
        assert_eq!((spec.host.as_str(), spec.port), ("10.0.0.7", 5433));
        assert_eq!(spec.dbname, "bob", "the user's name, as libpq");
        assert_eq!(spec.sslmode, SslMode::VerifyFull);
        assert_eq!(spec.password, None);
        let spec = Spec::parse("postgres://u@[::1]:7/d", &env(&[]), &no_file).unwrap();
        assert_eq!(spec.host, "::1");
        assert_eq!(spec.shown(), "postgres://u@[::1]:7/d");
        let spec = Spec::parse("postgres://u@/d?host=/run/pg", &env(&[]), &no_file).unwrap();
        assert_eq!(spec.host, "/run/pg");
    }

    #[test]
    fn a_message_keeps_every_url_but_its_password() {
        assert_eq!(
            redact(
                "postgres://ann:s3cr@t@h:1/db: no; see postgresql://bob:x@h2?sslmode=disable and postgres://h3/d"
            ),
            "postgres://ann@h:1/db: no; see postgresql://bob@h2?sslmode=disable and postgres://h3/d"
        );
        assert_eq!(redact("no url here"), "no url here");
    }

    #[test]
    fn a_bad_url_is_refused_saying_what_is_wrong_and_never_echoing_the_password() {
        for (url, says) in [
            ("postgres://u:pw@h:99999/d", "port \"99999\""),
            ("postgres://u:pw@h/d?sslmode=maybe", "sslmode=\"maybe\""),
            ("postgres://u:pw@h/d?colour=red", "\"colour\""),
            ("postgres://u:pw@a,b/d", "several hosts"),
            ("postgres://u:pw@h/d%zz", "two hex digits"),
            ("postgres://u:pw@[::1/d", "closing ]"),
            ("mysql://u:pw@h/d", "postgres://"),
        ] {
            let err = Spec::parse(url, &env(&[]), &no_file).unwrap_err();
            assert!(err.contains(says), "{url}: {err}");
            assert!(!err.contains("pw"), "{url}: {err}");
        }
    }

    #[test]
    fn the_password_comes_from_the_url_then_pgpassword_then_the_password_file() {
        let file = "# hosts\n*:*:other:*:no\nh\\:x:5432:d:u:first\nh:5432:d:u:from\\:file\nh:*:*:*:later\n";
        let read = |path: &Path| (path == Path::new("/home/u/.pgpass")).then(|| file.to_owned());
        let vars = [("HOME", "/home/u")];
        let spec = Spec::parse("postgres://u@h/d", &env(&vars), &read).unwrap();
        assert_eq!(spec.password.as_deref(), Some("from:file"));
        let spec = Spec::parse(
            "postgres://u@h/d",
            &env(&[("HOME", "/home/u"), ("PGPASSWORD", "env")]),
            &read,
        )
        .unwrap();
        assert_eq!(spec.password.as_deref(), Some("env"));
        let spec = Spec::parse("postgres://u:url@h/d", &env(&vars), &read).unwrap();
        assert_eq!(spec.password.as_deref(), Some("url"));
        let spec = Spec::parse("postgres://v@h/e", &env(&vars), &read).unwrap();
        assert_eq!(spec.password.as_deref(), Some("later"));
        assert_eq!(
            pgpass_lookup(file, "h:x", 5432, "d", "u").as_deref(),
            Some("first")
        );
        assert_eq!(
            pgpass_lookup("localhost:*:*:*:sock", "/run/pg", 5432, "d", "u").as_deref(),
            Some("sock")
        );
        assert_eq!(pgpass_lookup("a:b:c", "a", 1, "c", "d"), None);
    }
}
