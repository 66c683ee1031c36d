//! Drives a `mixio serve` process: start it on a free loopback port, talk HTTP and websockets
//! to it, read its log, stop it with SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A running `mixio serve`, killed when dropped.
pub struct MixioServe {
    child: Child,
    /// The server's URL, from its ready line.
    pub url: String,
    /// The admin listener's URL, when it was started with `--admin-listen`.
    pub admin_url: Option<String>,
    log: Arc<Mutex<String>>,
}

impl MixioServe {
    /// Runs `bin serve <args> --listen 127.0.0.1:0` with `env`, and waits for its ready line.
    pub fn start(bin: &Path, args: &[&str], env: &[(&str, &str)]) -> MixioServe {
        let mut command = Command::new(bin);
        command.arg("serve").args(args).args(["--listen", "127.0.0.1:0"]);
        MixioServe::start_command(command, env)
    }

    /// Like [`start`](MixioServe::start), in a process whose file-descriptor limit (soft and
    /// hard) is `limit`.
    pub fn start_with_fd_limit(bin: &Path, args: &[&str], env: &[(&str, &str)], limit: u32) -> MixioServe {
        let mut command = Command::new("sh");
        command
            .args(["-c", &format!("ulimit -n {limit} && exec \"$0\" \"$@\"")])
            .arg(bin)
            .arg("serve")
            .args(args)
            .args(["--listen", "127.0.0.1:0"]);
        MixioServe::start_command(command, env)
    }

    fn start_command(mut command: Command, env: &[(&str, &str)]) -> MixioServe {
        command.env("RUST_LOG", "warn,mixio_host=info,mixio_serve=info,mixio::guest=info");
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child =
            command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("the mixio binary starts");
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().expect("piped stderr");
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let stdout = child.stdout.take().expect("piped stdout");
        let (ready, url) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut admin_url = None;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let url = line.rsplit(" on ").next().unwrap_or_default().trim().to_string();
                if line.starts_with("mixio: admin") {
                    admin_url = Some(url);
                } else if line.starts_with("mixio: serving") {
                    let _ = ready.send((url, admin_url.take()));
                }
            }
        });
        match url.recv_timeout(Duration::from_secs(180)) {
            Ok((url, admin_url)) => MixioServe { child, url, admin_url, log },
            Err(_) => {
                let _ = child.kill();
                let status = child.wait();
                panic!("mixio serve did not become ready ({status:?}); its log:\n{}", log.lock().unwrap());
            }
        }
    }

    /// What the server has logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// The log once `done` holds of it, or after 30 s (the server writes a line before it
    /// answers, but the thread copying its stderr may not have read it yet).
    pub fn log_when(&self, done: impl Fn(&str) -> bool) -> String {
        for _ in 0..300 {
            let log = self.log();
            if done(&log) {
                return log;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.log()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process with SIGKILL, at once: no drain, no clean-up.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM without waiting.
    pub fn terminate(&self) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        assert!(status.is_ok_and(|s| s.success()), "kill -TERM works");
    }

    /// Sends SIGTERM and waits for the exit status (at most 60 s).
    pub fn stop(mut self) -> ExitStatus {
        self.terminate();
        for _ in 0..600 {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("mixio serve did not exit within 60 s of SIGTERM; its log:\n{}", self.log());
    }
}

impl Drop for MixioServe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The repository's root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ is in the repository").to_path_buf()
}

/// Writes into `dir` a copy of the repository's demo `mixio.toml` whose components use the
/// guests built for the tests, with its data in `dir` and its static files from the repository.
pub fn demo_manifest(dir: &Path) -> PathBuf {
    let root = repo_root();
    let text = std::fs::read_to_string(root.join("mixio.toml")).expect("the demo mixio.toml");
    let mut manifest: toml::Table = text.parse().expect("the demo mixio.toml is TOML");
    manifest.insert("data_dir".into(), dir.join("data").display().to_string().into());
    if let Some(dir) = manifest.get("static_dir").and_then(|d| d.as_str()).map(|d| root.join(d)) {
        manifest.insert("static_dir".into(), dir.display().to_string().into());
    }
    let components = manifest.get_mut("components").and_then(|c| c.as_table_mut()).expect("[components]");
    for (name, component) in components.iter_mut() {
        let component = component.as_table_mut().expect("a component table");
        component.remove("build");
        component.insert("source".into(), crate::guest(name).display().to_string().into());
    }
    let path = dir.join("mixio.toml");
    std::fs::write(&path, toml::to_string(&manifest).expect("TOML")).expect("write the manifest");
    path
}

/// A fresh empty directory under the system's temporary directory, for one test.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(crate::services::unique_name(name));
    std::fs::create_dir_all(&dir).expect("create a scratch directory");
    dir
}

/// A server in this process (its counters and host can be read), serving `manifest` until
/// the calling runtime ends. Returns its URL, its counters and its host.
pub async fn start_in_process(manifest: &str) -> (String, mixio_serve::ServerStats, mixio_host::Host) {
    let dir = scratch_dir("inproc");
    let path = dir.join("mixio.toml");
    std::fs::write(&path, manifest).expect("write the manifest");
    let app = mixio_serve::App::from_manifest(&path).expect("a valid manifest");
    let server = mixio_serve::Server::bind(app, "127.0.0.1:0".parse().expect("an address"))
        .await
        .expect("the server binds");
    let (url, stats, host) = (server.url().to_string(), server.stats(), server.host().clone());
    tokio::spawn(server.run(std::future::pending(), Duration::from_secs(1)));
    (url, stats, host)
}
