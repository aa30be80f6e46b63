//! A tiny HTTP/1.1 server on loopback for unit tests: answers each request by the first
//! route whose prefix matches `METHOD /path?query`, and records the requests it saw. `{base}`
//! in a body becomes the server's own base URL (for `nextLink`-style links).

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Clone)]
pub struct Route {
    pub prefix: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Route {
    pub fn json(prefix: &str, status: u16, body: serde_json::Value) -> Route {
        Route {
            prefix: prefix.into(),
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string(),
        }
    }
}

pub struct FakeServer {
    pub base: String,
    pub requests: Arc<Mutex<Vec<String>>>,
}

impl FakeServer {
    pub async fn start(routes: Vec<Route>) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let base = format!("http://{}/", listener.local_addr().expect("address"));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let routes: Vec<Route> =
            routes.into_iter().map(|r| Route { body: r.body.replace("{base}", &base), ..r }).collect();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let routes = routes.clone();
                let seen = seen.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 65536];
                    let n = sock.read(&mut buf).await.unwrap_or(0);
                    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                    let line = text.lines().next().unwrap_or("").to_string();
                    let target = line.rsplit_once(' ').map(|(a, _)| a.to_string()).unwrap_or_default();
                    seen.lock().expect("lock").push(text.clone());
                    let response = match routes.iter().find(|r| target.starts_with(&r.prefix)) {
                        Some(r) => {
                            let headers: String = r.headers.iter().map(|(k, v)| format!("{k}: {v}\r\n")).collect();
                            format!(
                                "HTTP/1.1 {} X\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{}",
                                r.status,
                                r.body.len(),
                                r.body
                            )
                        }
                        None => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string(),
                    };
                    let _ = sock.write_all(response.as_bytes()).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        FakeServer { base, requests }
    }
}
