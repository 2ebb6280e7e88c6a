//! An isolated moto server (the AWS API emulator) per test binary or test,
//! with a labelled fake for the two EKS APIs moto lacks (`fake_eks.py`:
//! access entries and Pod Identity associations) and labelled fixes where
//! moto answers otherwise than EC2 (`moto_fixes.py`: CreateFleet's
//! security groups).

use crate::devenv::{DevEnv, Part};
use serde::Deserialize;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Why a moto server could not be started or used.
#[derive(Debug, thiserror::Error)]
pub enum MotoError {
    /// The dev-env Python (with moto) is not installed.
    #[error("moto is not installed: run scripts/dev-env")]
    NotInstalled,
    /// Starting or talking to the server failed.
    #[error("moto server: {0}")]
    Io(#[from] std::io::Error),
    /// The server did not report its port.
    #[error("moto server did not start: {0}")]
    Start(String),
}

/// A running moto server on `127.0.0.1:<free port>`; stopped on drop, and by
/// itself when the test process exits.
#[derive(Debug)]
pub struct MotoServer {
    child: Child,
    port: u16,
    /// The request log, when started with one.
    log: Option<PathBuf>,
}

/// One request moto received, as its request log wrote it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct LoggedRequest {
    /// The access key id that signed it (tells programs apart).
    pub key: String,
    /// The signing service (`iam`, `sqs`, `events`, `eks`, `ec2`, ...).
    pub service: String,
    /// The HTTP method.
    pub method: String,
    /// The path (REST APIs name the operation and resource here).
    pub path: String,
    /// The query string.
    pub query: String,
    /// `X-Amz-Target` (JSON APIs name the operation here).
    pub target: String,
    /// The body: a form (query APIs) or JSON.
    pub body: String,
}

impl MotoServer {
    /// Starts a server. `MOTO_IAM_LOAD_MANAGED_POLICIES` is on so AWS-managed
    /// policies can be attached, as in real IAM.
    pub fn start(env: &DevEnv) -> Result<Self, MotoError> {
        Self::spawn(env, None)
    }

    /// Starts a server that logs every request it receives (see
    /// [`Self::requests`]), for tests that evaluate what was asked.
    pub fn start_logging(env: &DevEnv) -> Result<Self, MotoError> {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "moto-requests-{}-{}.jsonl",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        ));
        std::fs::write(&path, "")?;
        Self::spawn(env, Some(path))
    }

    /// Every request received, in order (empty without a log); a request's
    /// `key` tells which program sent it.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        let Some(path) = &self.log else {
            return Vec::new();
        };
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str::<LoggedRequest>(line).ok())
            .collect()
    }

    fn spawn(env: &DevEnv, log: Option<PathBuf>) -> Result<Self, MotoError> {
        let python = env.path(Part::Python).ok_or(MotoError::NotInstalled)?;
        let mut command = Command::new(python);
        if let Some(path) = &log {
            command.env("MOTO_REQUEST_LOG", path);
        }
        let mut child = command
            .arg("-c")
            .arg(concat!(
                include_str!("fake_eks.py"),
                "\n",
                include_str!("moto_fixes.py"),
                "\n",
                include_str!("moto_runner.py")
            ))
            .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut first_line = String::new();
        BufReader::new(stdout).read_line(&mut first_line)?;
        let port = first_line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok());
        let Some(port) = port else {
            let _ = child.kill();
            let mut stderr = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut stderr);
            }
            let _ = child.wait();
            return Err(MotoError::Start(format!("{first_line:?} {stderr}")));
        };
        // Discard moto's request log so the pipe never fills and blocks it.
        if let Some(stderr) = child.stderr.take() {
            std::thread::spawn(move || {
                std::io::copy(&mut BufReader::new(stderr), &mut std::io::sink())
            });
        }
        Ok(MotoServer { child, port, log })
    }

    /// `http://127.0.0.1:<port>`, the endpoint URL for every AWS SDK client.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Wipes all state (`POST /moto-api/reset`).
    pub fn reset(&self) -> Result<(), MotoError> {
        let status = self.request("POST", "/moto-api/reset")?;
        if status == 200 {
            Ok(())
        } else {
            Err(MotoError::Start(format!("reset returned HTTP {status}")))
        }
    }

    /// Sends a bodiless HTTP/1.1 request and returns the status code.
    fn request(&self, method: &str, path: &str) -> Result<u16, MotoError> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        response
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| MotoError::Start(format!("malformed HTTP response {response:?}")))
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(path) = &self.log {
            let _ = std::fs::remove_file(path);
        }
    }
}
