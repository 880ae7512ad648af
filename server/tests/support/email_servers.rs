//! Real mail servers for the email tests, started per test and stopped on
//! drop: an SMTP server (`smtp_server.py`, aiosmtpd with AUTH) and Dovecot
//! for IMAP, each in its own temporary directory on a loopback port, plus a
//! certificate authority made with the `openssl` CLI for the TLS modes.
//!
//! `.ci/run` installs what they need (aiosmtpd, dovecot-imapd, openssl).
//! Without it a test is skipped with a note, unless
//! `HERMES_REQUIRE_SERVICES=1`, which turns the skip into a failure.

#![allow(dead_code, reason = "each email test binary uses part of the harness")]

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rustls::pki_types::CertificateDer;
use serde_json::Value;
use tempfile::TempDir;

/// How long a server may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Whether CI demands the external servers (`HERMES_REQUIRE_SERVICES=1`).
pub fn services_required() -> bool {
    std::env::var("HERMES_REQUIRE_SERVICES").as_deref() == Ok("1")
}

/// `None` with a note when a server cannot run here, or a failure when CI
/// requires it.
fn unavailable<T>(what: &str, why: &str) -> Option<T> {
    assert!(
        !services_required(),
        "{what} is required (HERMES_REQUIRE_SERVICES=1) but {why}"
    );
    eprintln!("skipping: {what} is not available here: {why}");
    None
}

/// A fresh temporary directory other users can traverse (Dovecot's mail
/// processes run as an unprivileged user).
fn shared_tempdir() -> TempDir {
    let dir = tempfile::Builder::new()
        .prefix("hermes-email-")
        .tempdir()
        .expect("a temporary directory is created");
    set_mode(dir.path(), 0o755);
    dir
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("permissions can be set");
}

/// A free loopback port: bound, then released for the server to take.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port binds");
    listener
        .local_addr()
        .expect("a bound socket has an address")
        .port()
}

/// The first of `names` that runs, looked up in PATH and the sbin folders.
fn program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let dirs = path
        .split(':')
        .map(PathBuf::from)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from));
    let dirs: Vec<PathBuf> = dirs.collect();
    names.iter().find_map(|name| {
        dirs.iter()
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

/// Runs a command to completion; its stderr when it fails.
fn run(command: &mut Command) -> Result<String, String> {
    let output = command
        .output()
        .map_err(|error| format!("{command:?} does not run: {error}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "{command:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

// --- certificates ---

/// A test CA and a server certificate it signed for `127.0.0.1` and `localhost`.
#[derive(Debug)]
pub struct Certificates {
    dir: TempDir,
}

impl Certificates {
    /// Makes them with the `openssl` CLI; `None` (or a failure under
    /// `HERMES_REQUIRE_SERVICES=1`) when it is missing.
    pub fn generate() -> Option<Self> {
        let Some(openssl) = program(&["openssl"]) else {
            return unavailable("openssl", "the openssl command is not installed");
        };
        let dir = shared_tempdir();
        let at = |name: &str| dir.path().join(name);
        std::fs::write(
            at("ext.cnf"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\n\
             keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .expect("the extension file is written");

        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
        let steps: [Vec<&str>; 4] = [
            [
                &["req", "-x509"][..],
                &ec,
                &[
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.pem",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=Hermes test CA",
                ],
            ]
            .concat(),
            [
                &["req"][..],
                &ec,
                &["-keyout", "key.pem", "-out", "leaf.csr", "-subj", "/CN=127.0.0.1"],
            ]
            .concat(),
            vec![
                "x509",
                "-req",
                "-in",
                "leaf.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "cert.pem",
                "-days",
                "2",
                "-extfile",
                "ext.cnf",
            ],
            vec!["x509", "-in", "ca.pem", "-outform", "DER", "-out", "ca.der"],
        ];
        for step in steps {
            if let Err(why) = run(Command::new(&openssl).args(step).current_dir(dir.path())) {
                return unavailable("openssl", &why);
            }
        }
        // Dovecot's config process reads the key; it runs as root or as us.
        set_mode(&at("key.pem"), 0o644);
        Some(Self { dir })
    }

    /// The server certificate (PEM).
    pub fn cert(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    /// The server key (PEM).
    pub fn key(&self) -> PathBuf {
        self.dir.path().join("key.pem")
    }

    /// The CA, to trust.
    pub fn ca(&self) -> CertificateDer<'static> {
        CertificateDer::from(std::fs::read(self.dir.path().join("ca.der")).expect("the CA was written"))
    }
}

// --- SMTP ---

/// How the SMTP server secures connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpMode {
    Plain,
    StartTls,
    Implicit,
}

/// `smtp_server.py`, running.
#[derive(Debug)]
pub struct SmtpServer {
    pub port: u16,
    dir: TempDir,
    child: Child,
}

impl SmtpServer {
    /// Starts the server accepting `username` / `password`; `certs` for the TLS modes.
    pub fn start(
        mode: SmtpMode,
        username: &str,
        password: &str,
        certs: Option<&Certificates>,
    ) -> Option<Self> {
        let Some(python) = program(&["python3"]) else {
            return unavailable("the SMTP test server", "python3 is not installed");
        };
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_server.py");
        let dir = shared_tempdir();

        let mut command = Command::new(python);
        command
            .arg(script)
            .args(["--dir".as_ref(), dir.path().as_os_str()])
            .args(["--username", username, "--password", password])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        match (mode, certs) {
            (SmtpMode::Plain, _) => {}
            (SmtpMode::StartTls | SmtpMode::Implicit, Some(certs)) => {
                let tls = if mode == SmtpMode::StartTls {
                    "starttls"
                } else {
                    "implicit"
                };
                command
                    .args(["--tls", tls])
                    .arg("--cert")
                    .arg(certs.cert())
                    .arg("--key")
                    .arg(certs.key());
            }
            (SmtpMode::StartTls | SmtpMode::Implicit, None) => panic!("a TLS mode needs certificates"),
        }
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(error) => {
                return unavailable(
                    "the SMTP test server",
                    &format!("python3 does not start: {error}"),
                );
            }
        };

        // The script prints `READY <port>` once it listens.
        let stdout = child.stdout.take().expect("stdout is piped");
        let (ready, ready_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = ready.send(line);
        });
        let line = ready_rx.recv_timeout(START_TIMEOUT).unwrap_or_default();
        let Some(port) = line
            .strip_prefix("READY ")
            .and_then(|port| port.trim().parse().ok())
        else {
            let _ = child.kill();
            let mut stderr = String::new();
            if let Some(mut pipe) = child.stderr.take() {
                let _ = pipe.read_to_string(&mut stderr);
            }
            let _ = child.wait();
            return unavailable(
                "the SMTP test server (aiosmtpd)",
                &format!("it did not start: {stderr}"),
            );
        };
        Some(Self { port, dir, child })
    }

    /// The messages stored so far, in the order they were accepted:
    /// `{mail_from, rcpt_tos, data, auth_login}`.
    pub fn messages(&self) -> Vec<Value> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .expect("the message folder reads")
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
            .collect();
        names.sort();
        names
            .iter()
            .map(|path| {
                let text = std::fs::read_to_string(path).expect("a stored message reads");
                serde_json::from_str(&text).expect("a stored message is JSON")
            })
            .collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// --- IMAP ---

/// A message to put in the Dovecot inbox.
#[derive(Clone, Copy, Debug)]
pub struct StoredMessage<'a> {
    /// The raw message, CRLF line ends.
    pub raw: &'a str,
    /// Whether it has been read (`\Seen`).
    pub seen: bool,
}

/// Dovecot, running as a foreground process with its own configuration.
#[derive(Debug)]
pub struct Dovecot {
    /// The IMAP port (plain, upgradable with STARTTLS when TLS is on).
    pub imap_port: u16,
    /// The IMAPS port (implicit TLS), when TLS is on.
    pub imaps_port: Option<u16>,
    dir: TempDir,
    child: Child,
}

impl Dovecot {
    /// Starts Dovecot with one user and an inbox holding `messages`, in
    /// order; with `certs`, TLS is offered (STARTTLS and implicit).
    pub fn start(
        username: &str,
        password: &str,
        messages: &[StoredMessage<'_>],
        certs: Option<&Certificates>,
    ) -> Option<Self> {
        let Some(dovecot) = program(&["dovecot"]) else {
            return unavailable("Dovecot", "the dovecot-imapd package is not installed");
        };
        let dir = shared_tempdir();
        let at = |name: &str| dir.path().join(name);
        let (uid, gid, users) = match run(Command::new("id").arg("-u")).map(|out| out.trim().to_owned()) {
            // As root, mail is read as `nobody` (Dovecot refuses root) and
            // login processes use the package's own users.
            Ok(uid) if uid == "0" => ("65534".to_owned(), "65534".to_owned(), None),
            Ok(uid) => {
                let gid = run(Command::new("id").arg("-g"))
                    .unwrap_or_default()
                    .trim()
                    .to_owned();
                let name = run(Command::new("id").arg("-un"))
                    .unwrap_or_default()
                    .trim()
                    .to_owned();
                (uid, gid, Some(name))
            }
            Err(why) => return unavailable("Dovecot", &why),
        };

        let maildir = at("mail/Maildir");
        for sub in ["cur", "new", "tmp"] {
            std::fs::create_dir_all(maildir.join(sub)).expect("the maildir is created");
        }
        for (index, message) in messages.iter().enumerate() {
            // Maildir names: unique, in delivery order; `:2,S` marks a read message.
            let unique = format!("{}.M{index}P1.hermes-test", 1_764_000_000 + index);
            let path = if message.seen {
                maildir.join("cur").join(format!("{unique}:2,S"))
            } else {
                maildir.join("new").join(unique)
            };
            std::fs::write(path, message.raw).expect("a message is written");
        }
        let number = |id: &str| id.parse::<u32>().expect("`id` prints numbers");
        chown_tree(&at("mail"), number(&uid), number(&gid));
        std::fs::write(at("users"), format!("{username}:{{PLAIN}}{password}\n"))
            .expect("the user file is written");

        let imap_port = free_port();
        let imaps_port = certs.map(|_| free_port());
        let mut config = String::new();
        let _ = write!(
            config,
            "base_dir = {base}/run\nstate_dir = {base}/state\nlisten = 127.0.0.1\nprotocols = imap\n\
             log_path = {base}/dovecot.log\ndisable_plaintext_auth = no\nauth_mechanisms = plain login\n\
             auth_failure_delay = 0\nfirst_valid_uid = 1\nmail_location = maildir:{base}/mail/Maildir\n\
             passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {base}/users\n}}\n\
             userdb {{\n  driver = static\n  args = uid={uid} gid={gid} home={base}/mail\n}}\n\
             service imap-login {{\n  chroot =\n  inet_listener imap {{\n    address = 127.0.0.1\n    port = {imap_port}\n  }}\n\
               inet_listener imaps {{\n    address = 127.0.0.1\n    port = {imaps}\n  }}\n}}\n",
            base = dir.path().display(),
            imaps = imaps_port.unwrap_or(0),
        );
        match certs {
            Some(certs) => {
                let _ = write!(
                    config,
                    "ssl = yes\nssl_cert = <{}\nssl_key = <{}\n",
                    certs.cert().display(),
                    certs.key().display()
                );
                if Path::new("/usr/share/dovecot/dh.pem").is_file() {
                    config.push_str("ssl_dh = </usr/share/dovecot/dh.pem\n");
                }
            }
            None => config.push_str("ssl = no\n"),
        }
        if let Some(user) = users {
            let _ = write!(
                config,
                "default_login_user = {user}\ndefault_internal_user = {user}\n"
            );
        }
        std::fs::write(at("dovecot.conf"), config).expect("the configuration is written");

        let child = Command::new(dovecot)
            .arg("-F")
            .arg("-c")
            .arg(at("dovecot.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn();
        let child = match child {
            Ok(child) => child,
            Err(error) => return unavailable("Dovecot", &format!("it does not start: {error}")),
        };

        let server = Self {
            imap_port,
            imaps_port,
            dir,
            child,
        };
        match server.wait_until_ready() {
            Ok(()) => Some(server),
            Err(why) => {
                let log = std::fs::read_to_string(server.dir.path().join("dovecot.log")).unwrap_or_default();
                drop(server);
                unavailable("Dovecot", &format!("{why}\n{log}"))
            }
        }
    }

    /// Waits for the real greeting (`… ready.`); while its auth process
    /// starts, Dovecot first says it is waiting for it.
    fn wait_until_ready(&self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.imap_port)) {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                let mut greeting = String::new();
                let mut reader = BufReader::new(stream.try_clone().map_err(|error| error.to_string())?);
                while reader.read_line(&mut greeting).is_ok_and(|read| read > 0) {
                    if greeting.contains("ready.") {
                        let _ = stream.write_all(b"a LOGOUT\r\n");
                        return Ok(());
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err("it did not greet within 20 s".to_owned())
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        // SIGTERM lets the master stop its children; SIGKILL only if it hangs.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Gives a tree to the mail user.
fn chown_tree(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).expect("the mail folder can be chowned");
    if path.is_dir() {
        for entry in std::fs::read_dir(path)
            .expect("the mail folder reads")
            .filter_map(Result::ok)
        {
            chown_tree(&entry.path(), uid, gid);
        }
    }
}
