//! A small blocking HTTP/1.1 client over `TcpStream`: keep-alive, bodies by
//! `Content-Length` or chunked, and uploads streamed from a file. Enough for
//! the API calls, the S3 uploads and the latency load, and it keeps xtask free
//! of an HTTP stack.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::infra::Res;

/// A response: status and body.
#[derive(Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The body bytes.
    pub body: Vec<u8>,
}

impl Response {
    /// The body as text (lossy), for error messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    pub fn json(&self) -> Res<serde_json::Value> {
        serde_json::from_slice(&self.body)
            .map_err(|e| format!("response is not JSON ({e}): {}", self.text()))
    }
}

/// What a request sends after its headers.
pub enum Body<'a> {
    /// Nothing.
    Empty,
    /// These bytes.
    Bytes(&'a [u8]),
    /// A file's contents, streamed.
    File(&'a std::path::Path),
}

/// One connection to `host:port`, reopened when the server closed it.
pub struct Conn {
    addr: String,
    stream: Option<BufReader<TcpStream>>,
    timeout: Duration,
}

impl Conn {
    /// A connection to `addr` (`127.0.0.1:port`), opened on first use.
    pub fn new(addr: &str) -> Self {
        Self {
            addr: addr.to_owned(),
            stream: None,
            timeout: Duration::from_secs(60),
        }
    }

    /// Sets the read and write timeout of later connections.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn open(&mut self) -> Res<&mut BufReader<TcpStream>> {
        if self.stream.is_none() {
            let s = TcpStream::connect(&self.addr)
                .map_err(|e| format!("cannot connect to {}: {e}", self.addr))?;
            // Requests are written whole; Nagle would only delay them.
            s.set_nodelay(true).map_err(|e| e.to_string())?;
            s.set_read_timeout(Some(self.timeout))
                .map_err(|e| e.to_string())?;
            s.set_write_timeout(Some(self.timeout))
                .map_err(|e| e.to_string())?;
            self.stream = Some(BufReader::with_capacity(64 * 1024, s));
        }
        self.stream
            .as_mut()
            .ok_or_else(|| "connection not open".to_owned())
    }

    /// Sends one request and reads the whole response. A request on a reused
    /// connection that the server closed meanwhile is sent once more on a
    /// new one (every request here is safe to repeat: GETs, PUTs of the same
    /// object, and POSTs only on fresh connections).
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &Body<'_>,
    ) -> Res<Response> {
        let length = match body {
            Body::Empty => 0,
            Body::Bytes(b) => b.len() as u64,
            Body::File(p) => std::fs::metadata(p)
                .map_err(|e| format!("cannot read {}: {e}", p.display()))?
                .len(),
        };
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.addr);
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if length > 0 || matches!(method, "POST" | "PUT" | "PATCH") {
            head.push_str(&format!("Content-Length: {length}\r\n"));
        }
        head.push_str("\r\n");
        let reused = self.stream.is_some();
        match self.exchange(&head, body) {
            Ok(r) => Ok(r),
            Err(_) if reused => self.exchange(&head, body),
            Err(e) => Err(e),
        }
    }

    /// Writes `head` and `body`, reads the answer; the connection is dropped
    /// after any error so the next request opens a new one.
    fn exchange(&mut self, head: &str, body: &Body<'_>) -> Res<Response> {
        let result = self.exchange_on_open(head, body);
        if result.is_err() {
            self.stream = None;
        }
        result
    }

    fn exchange_on_open(&mut self, head: &str, body: &Body<'_>) -> Res<Response> {
        let stream = self.open()?;
        let w = stream.get_mut();
        w.write_all(head.as_bytes()).map_err(|e| e.to_string())?;
        match body {
            Body::Empty => {}
            Body::Bytes(b) => w.write_all(b).map_err(|e| e.to_string())?,
            Body::File(p) => {
                let mut f = std::fs::File::open(p)
                    .map_err(|e| format!("cannot open {}: {e}", p.display()))?;
                std::io::copy(&mut f, w).map_err(|e| format!("upload failed: {e}"))?;
            }
        }
        w.flush().map_err(|e| e.to_string())?;
        let (response, keep) = read_response(stream)?;
        if !keep {
            self.stream = None;
        }
        Ok(response)
    }
}

fn read_line(r: &mut impl BufRead) -> Res<String> {
    let mut line = String::new();
    let n = r.read_line(&mut line).map_err(|e| e.to_string())?;
    if n == 0 {
        return Err("connection closed by the server".into());
    }
    Ok(line.trim_end().to_owned())
}

/// Reads a response; the flag says whether the connection can be reused.
fn read_response(r: &mut BufReader<TcpStream>) -> Res<(Response, bool)> {
    let status_line = read_line(r)?;
    let mut parts = status_line.split_whitespace();
    let version = parts.next().unwrap_or_default().to_owned();
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad HTTP status line: {status_line}"))?;
    let mut length = None;
    let mut chunked = false;
    // HTTP/1.0 servers close unless they say otherwise; 1.1 keeps alive.
    let mut keep = version == "HTTP/1.1";
    loop {
        let line = read_line(r)?;
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => length = value.parse::<u64>().ok(),
            "transfer-encoding" => chunked = value.eq_ignore_ascii_case("chunked"),
            "connection" => {
                if value.eq_ignore_ascii_case("close") {
                    keep = false;
                } else if value.eq_ignore_ascii_case("keep-alive") {
                    keep = true;
                }
            }
            _ => {}
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let size_line = read_line(r)?;
            let size = u64::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| format!("bad chunk size: {size_line}"))?;
            if size == 0 {
                // Trailers, then the blank line.
                while !read_line(r)?.is_empty() {}
                break;
            }
            r.by_ref()
                .take(size)
                .read_to_end(&mut body)
                .map_err(|e| e.to_string())?;
            read_line(r)?;
        }
    } else if let Some(n) = length {
        r.by_ref()
            .take(n)
            .read_to_end(&mut body)
            .map_err(|e| e.to_string())?;
        if (body.len() as u64) < n {
            return Err("response body cut short".into());
        }
    } else if status != 204 && status != 304 {
        r.read_to_end(&mut body).map_err(|e| e.to_string())?;
        keep = false;
    }
    Ok((Response { status, body }, keep))
}
