//! A small W3C WebDriver client for browser tests: headless Debian Chromium driven through
//! `chromedriver` over HTTP on loopback.
//!
//! A test that needs the browser asks [`Chromedriver::start`] for it. When `chromedriver` or
//! `chromium` is not installed the test is skipped (it says so on stderr) on a developer's
//! machine, and fails under `CI=true`, where they must be (`apt-get install chromium
//! chromium-driver`). Errors panic with WebDriver's message: this is test code.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::client;

/// Where Debian's `chromium-driver` installs `chromedriver`.
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// Where Debian's `chromium` installs the browser.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// The key under which WebDriver returns an element's id (the W3C "web element identifier").
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How long one WebDriver command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// How long `chromedriver` may take to say it is ready.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A running `chromedriver` on a free loopback port, killed when dropped.
pub struct Chromedriver {
    child: Child,
    /// Its URL, `http://127.0.0.1:PORT`.
    pub url: String,
    port: u16,
    log: Arc<Mutex<String>>,
}

impl Chromedriver {
    /// Starts `chromedriver` and waits until `GET /status` says it is ready; `None` (test
    /// skipped) when it or Chromium is not installed, outside CI.
    pub fn start() -> Option<Chromedriver> {
        for binary in [CHROMEDRIVER, CHROMIUM] {
            if !Path::new(binary).exists() {
                return missing(binary);
            }
        }
        // The free port is found by binding and dropping, so another process may take it
        // before chromedriver does; then chromedriver exits, and another port is tried.
        let mut failures = String::new();
        for _ in 0..3 {
            match Chromedriver::try_start() {
                Ok(driver) => return Some(driver),
                Err(failure) => failures.push_str(&format!("{failure}\n")),
            }
        }
        panic!("chromedriver did not start:\n{failures}");
    }

    fn try_start() -> Result<Chromedriver, String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free loopback port")
            .port();
        let mut child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{CHROMEDRIVER}: {e}"))?;
        let log = Arc::new(Mutex::new(String::new()));
        for output in [
            Box::new(child.stdout.take().expect("piped stdout")) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().expect("piped stderr")),
        ] {
            let sink = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(output).lines().map_while(Result::ok) {
                    let mut log = sink.lock().unwrap();
                    log.push_str(&line);
                    log.push('\n');
                }
            });
        }
        let mut driver = Chromedriver { child, url: format!("http://127.0.0.1:{port}"), port, log };
        let deadline = Instant::now() + READY_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(status) = driver.child.try_wait().expect("wait") {
                return Err(format!("chromedriver exited ({status}); its log:\n{}", driver.log()));
            }
            let ready = blocking_request(port, "GET", "/status")
                .and_then(|body| serde_json::from_str::<Value>(&body).ok())
                .is_some_and(|status| status["value"]["ready"] == true);
            if ready {
                return Ok(driver);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!("chromedriver was not ready within {READY_TIMEOUT:?}; its log:\n{}", driver.log()))
    }

    /// What `chromedriver` has printed so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Skips the test (`None`) when `binary` is missing, or fails it under `CI=true`.
fn missing<T>(binary: &str) -> Option<T> {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "{binary} is not installed, and under CI=true it must be (apt-get install chromium chromium-driver)"
        );
    }
    eprintln!(
        "skipped: this test needs {binary} (apt-get install chromium chromium-driver), which is not installed"
    );
    None
}

/// One HTTP/1.1 request without a body to `127.0.0.1:port`, blocking; the response body, or
/// `None` on any failure. For readiness polling and for ending a session in `Drop`.
fn blocking_request(port: u16, method: &str, path: &str) -> Option<String> {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).ok()?;
    // chromedriver answers `connection: close` but keeps the connection open: read the head,
    // then `content-length` bytes of body.
    let mut reader = BufReader::new(stream);
    let mut status = String::new();
    reader.read_line(&mut status).ok()?;
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    status.starts_with("HTTP/1.1 200").then(|| String::from_utf8_lossy(&body).into_owned())
}

/// An element of the page, by its WebDriver id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElementId(pub String);

/// A browser session: a headless Chromium window. Call [`Session::quit`] at the end; when
/// dropped without it (a failed test), the session is ended with a blocking request.
pub struct Session<'a> {
    driver: &'a Chromedriver,
    id: String,
    ended: bool,
}

impl<'a> Session<'a> {
    /// Opens a headless Chromium window.
    pub async fn new(driver: &'a Chromedriver) -> Session<'a> {
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": CHROMIUM,
                        "args": [
                            "--headless=new",
                            "--no-sandbox",
                            "--disable-gpu",
                            "--disable-dev-shm-usage",
                            "--window-size=1024,768",
                        ],
                    },
                },
            },
        });
        let value = request(&driver.url, "POST", "/session", Some(&capabilities))
            .await
            .unwrap_or_else(|e| panic!("creating a session: {e}; chromedriver's log:\n{}", driver.log()));
        let id = value["sessionId"].as_str().unwrap_or_else(|| panic!("no sessionId in {value}")).to_string();
        Session { driver, id, ended: false }
    }

    /// The session's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Sends a command of this session (`path` relative to `/session/{id}`) and returns the
    /// `value` of its answer, or WebDriver's error.
    pub async fn try_command(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
        request(&self.driver.url, method, &format!("/session/{}{path}", self.id), body).await
    }

    /// Like [`Session::try_command`], panicking on an error.
    pub async fn command(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        self.try_command(method, path, body).await.unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// Navigates to `url` and waits for the page to load.
    pub async fn goto(&self, url: &str) {
        self.command("POST", "/url", Some(&json!({ "url": url }))).await;
    }

    /// The current page's title.
    pub async fn title(&self) -> String {
        self.command("GET", "/title", None).await.as_str().unwrap_or_default().to_string()
    }

    /// The first element matching the CSS selector `css`, or WebDriver's error.
    pub async fn try_find(&self, css: &str) -> Result<ElementId, String> {
        let value = self
            .try_command("POST", "/element", Some(&json!({ "using": "css selector", "value": css })))
            .await?;
        value[ELEMENT_KEY]
            .as_str()
            .map(|id| ElementId(id.to_string()))
            .ok_or_else(|| format!("no element id in {value}"))
    }

    /// The first element matching the CSS selector `css`.
    pub async fn find(&self, css: &str) -> ElementId {
        self.try_find(css).await.unwrap_or_else(|e| panic!("finding `{css}`: {e}"))
    }

    /// Types `text` into the element.
    pub async fn send_keys(&self, element: &ElementId, text: &str) {
        self.command("POST", &format!("/element/{}/value", element.0), Some(&json!({ "text": text }))).await;
    }

    /// Clicks the element.
    pub async fn click(&self, element: &ElementId) {
        self.command("POST", &format!("/element/{}/click", element.0), Some(&json!({}))).await;
    }

    /// The element's rendered text, or WebDriver's error.
    pub async fn try_text(&self, element: &ElementId) -> Result<String, String> {
        let value = self.try_command("GET", &format!("/element/{}/text", element.0), None).await?;
        Ok(value.as_str().unwrap_or_default().to_string())
    }

    /// The element's rendered text.
    pub async fn text(&self, element: &ElementId) -> String {
        self.try_text(element).await.unwrap_or_else(|e| panic!("the text of {element:?}: {e}"))
    }

    /// Polls every 100 ms, up to `timeout`, until the text of the element matching `css`
    /// satisfies `done`, and returns that text; else an error naming the last text seen. The
    /// element need not exist at first and may be replaced meanwhile.
    pub async fn try_wait_until(
        &self,
        css: &str,
        timeout: Duration,
        done: impl Fn(&str) -> bool,
    ) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let text = match self.try_find(css).await {
                Ok(element) => self.try_text(&element).await,
                Err(e) => Err(e),
            };
            if let Ok(text) = &text
                && done(text)
            {
                return Ok(text.clone());
            }
            if Instant::now() >= deadline {
                let last = match text {
                    Ok(text) => format!("its text was {text:?}"),
                    Err(e) => format!("the last error was {e}"),
                };
                return Err(format!("`{css}` did not get there within {timeout:?}; {last}"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits, up to `timeout`, until the text of the element matching `css` contains `needle`,
    /// and returns that text.
    pub async fn wait_for_text(&self, css: &str, needle: &str, timeout: Duration) -> String {
        self.try_wait_until(css, timeout, |text| text.contains(needle))
            .await
            .unwrap_or_else(|e| panic!("waiting for {needle:?}: {e}"))
    }

    /// Ends the session, closing the browser.
    pub async fn quit(mut self) {
        self.ended = true;
        request(&self.driver.url, "DELETE", &format!("/session/{}", self.id), None)
            .await
            .unwrap_or_else(|e| panic!("ending the session: {e}"));
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        if !self.ended {
            // Best effort, and blocking: `Drop` cannot await.
            let _ = blocking_request(self.driver.port, "DELETE", &format!("/session/{}", self.id));
        }
    }
}

/// Sends one WebDriver request and returns the `value` of its answer, or WebDriver's error
/// (`error: message`).
async fn request(base: &str, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
    let (headers, body): (&[(&str, &str)], String) = match body {
        Some(body) => (&[("content-type", "application/json")], body.to_string()),
        None => (&[], String::new()),
    };
    let reply = tokio::time::timeout(COMMAND_TIMEOUT, client::try_send(base, method, path, headers, body))
        .await
        .map_err(|_| format!("{method} {path}: no answer within {COMMAND_TIMEOUT:?}"))??;
    let answer: Value = serde_json::from_str(&reply.body)
        .map_err(|e| format!("{method} {path}: status {}, not JSON ({e}): {}", reply.status, reply.body))?;
    let value = answer.get("value").cloned().unwrap_or(Value::Null);
    if reply.status == 200 {
        return Ok(value);
    }
    let error = value["error"].as_str().unwrap_or("unknown error");
    let message = value["message"].as_str().unwrap_or_default();
    Err(format!("{method} {path}: status {}: {error}: {message}", reply.status))
}
