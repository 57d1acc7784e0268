//! The `ctx.llm` stand-in of `extensor plugin test`.
//!
//! On the server `ctx.llm.complete` is the platform's OpenAI-compatible
//! chat-completions client (`extensor_js::host::llm::LlmClient`). A local
//! run uses that same client, pointed at one of:
//!
//! - the real endpoint of `EXTENSOR_LLM_BASE_URL` (with `EXTENSOR_LLM_API_KEY`
//!   and `EXTENSOR_LLM_MODELS`), when it is set and `--llm-reply` is not;
//! - otherwise this stand-in: an endpoint on 127.0.0.1, started for the run,
//!   that speaks the same protocol (`POST /v1/chat/completions`) and answers
//!   deterministically, never calling a model: the canned replies of
//!   `--llm-reply FILE`, or without one an echo of the last user message.
//!
//! Going through the real client means the model allowlist, the message and
//! size caps, the `max_tokens` clamp and the response parsing behave exactly
//! as on the server. Every completion the stand-in answers is recorded
//! (model, messages, reply) so `plugin test` can print the prompts.

use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, anyhow, bail};
use extensor_js::host::llm::{ChatMessage, LLM_MESSAGES_MAX, LLM_PROMPT_BYTES_MAX, LlmConfig};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The model the stand-in allows when `EXTENSOR_LLM_MODELS` is not set.
pub const STAND_IN_MODEL: &str = "local-stand-in";
/// Canned replies in one `--llm-reply` file.
pub const LLM_REPLIES_MAX: usize = 1_000;
/// Completions recorded for the report; later ones are answered but not
/// recorded (a plugin looping over `ctx.llm` must not exhaust memory).
pub const LLM_CALLS_RECORDED_MAX: usize = 1_000;
/// Request head (request line and headers) the stand-in reads at most.
pub const HEAD_BYTES_MAX: usize = 64 * 1024;
/// Request body the stand-in reads at most: the client's prompt cap, with
/// room for JSON escaping (up to 6 bytes per character) and the envelope.
pub const BODY_BYTES_MAX: usize = 6 * LLM_PROMPT_BYTES_MAX + LLM_MESSAGES_MAX * 1024;

/// What the stand-in answers.
#[derive(Clone, Debug, PartialEq)]
pub enum Replies {
    /// The last user message's content, as is.
    Echo,
    /// `--llm-reply FILE` holding text (JSON other than an array included):
    /// that text answers every completion.
    Fixed { file: String, reply: String },
    /// `--llm-reply FILE` holding a JSON array of strings: one reply per
    /// completion, in order; a completion after the last fails.
    Sequence { file: String, replies: Vec<String> },
}

impl Replies {
    /// Reads a `--llm-reply` file (at most `bytes_max`, UTF-8).
    pub fn from_file(path: &Path, bytes_max: u64) -> Result<Replies> {
        let at = path.display().to_string();
        let meta = std::fs::metadata(path).with_context(|| format!("llm reply file {at}"))?;
        if !meta.is_file() {
            bail!("llm reply file {at}: is not a regular file");
        }
        if meta.len() > bytes_max {
            bail!(
                "llm reply file {at}: is {} bytes; the limit is {bytes_max}",
                meta.len()
            );
        }
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("llm reply file {at} (must be UTF-8 text)"))?;
        match serde_json::from_str::<Value>(&text) {
            Ok(Value::Array(items)) => Ok(Replies::Sequence {
                replies: canned_list(&at, items)?,
                file: at,
            }),
            _ => Ok(Replies::Fixed {
                file: at,
                reply: text,
            }),
        }
    }

    fn describe(&self) -> String {
        match self {
            Replies::Echo => "echo of the last user message".into(),
            Replies::Fixed { file, .. } => format!("the reply in {file}"),
            Replies::Sequence { file, replies } => {
                format!("the {} replies in {file}, in order", replies.len())
            }
        }
    }
}

fn canned_list(at: &str, items: Vec<Value>) -> Result<Vec<String>> {
    if items.is_empty() || items.len() > LLM_REPLIES_MAX {
        bail!("llm reply file {at}: a JSON array needs 1 to {LLM_REPLIES_MAX} replies");
    }
    items
        .into_iter()
        .enumerate()
        .map(|(i, v)| match v {
            Value::String(s) => Ok(s),
            other => Err(anyhow!(
                "llm reply file {at}: [{i}] is {}, not a string",
                kind_of(&other)
            )),
        })
        .collect()
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// One completion the stand-in answered (or refused).
#[derive(Clone, Debug, Serialize)]
pub struct LlmCall {
    pub model: String,
    pub messages: Vec<ChatMessage>,
    pub reply: Option<String>,
    pub error: Option<String>,
}

/// The body the client sends; unknown fields (temperature…) are ignored.
#[derive(Deserialize)]
struct CompletionBody {
    model: String,
    messages: Vec<ChatMessage>,
}

struct State {
    replies: Replies,
    used: usize,
    calls: Vec<LlmCall>,
}

/// The running stand-in; stops serving when dropped.
pub struct LlmStandIn {
    state: Arc<Mutex<State>>,
    config: LlmConfig,
    description: String,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for LlmStandIn {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl LlmStandIn {
    /// Binds a free loopback port and serves completions from `replies`.
    /// The allowlist is `EXTENSOR_LLM_MODELS` as on the server, else
    /// [`STAND_IN_MODEL`].
    pub async fn start(replies: Replies) -> Result<LlmStandIn> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("llm stand-in: bind 127.0.0.1")?;
        let port = listener.local_addr().context("llm stand-in")?.port();
        let mut models: Vec<String> = std::env::var("EXTENSOR_LLM_MODELS")
            .unwrap_or_default()
            .split(',')
            .map(|m| m.trim().to_owned())
            .filter(|m| !m.is_empty())
            .collect();
        if models.is_empty() {
            models.push(STAND_IN_MODEL.to_owned());
        }
        let description = replies.describe();
        let state = Arc::new(Mutex::new(State {
            replies,
            used: 0,
            calls: Vec::new(),
        }));
        let server = tokio::spawn(serve(listener, state.clone()));
        Ok(LlmStandIn {
            state,
            config: LlmConfig {
                base_url: format!("http://127.0.0.1:{port}/v1"),
                api_key: None,
                models,
            },
            description,
            server,
        })
    }

    /// The client configuration that reaches this stand-in.
    pub fn config(&self) -> LlmConfig {
        self.config.clone()
    }

    /// e.g. "echo of the last user message".
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The completions answered so far, in order.
    pub fn calls(&self) -> Vec<LlmCall> {
        lock(&self.state).calls.clone()
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

async fn serve(listener: TcpListener, state: Arc<Mutex<State>>) {
    while let Ok((sock, _)) = listener.accept().await {
        let state = state.clone();
        tokio::spawn(async move {
            // A client that vanishes mid-request has nobody to tell.
            let _ = answer_connection(sock, &state).await;
        });
    }
}

async fn answer_connection(mut sock: TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    let (status, body) = match read_request(&mut sock).await? {
        Err(why) => (400, error_body(&why)),
        Ok((target, _)) if !target.ends_with("/chat/completions") => (
            404,
            error_body("the stand-in serves POST /v1/chat/completions"),
        ),
        Ok((_, body)) => complete(state, &body),
    };
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        _ => "Internal Server Error",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    sock.write_all(head.as_bytes()).await?;
    sock.write_all(body.as_bytes()).await?;
    sock.shutdown().await
}

/// Reads one `POST` request: `(target, body)`, or what is wrong with it.
async fn read_request(
    sock: &mut TcpStream,
) -> std::io::Result<std::result::Result<(String, Vec<u8>), String>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > HEAD_BYTES_MAX {
            return Ok(Err(format!("request head over {HEAD_BYTES_MAX} bytes")));
        }
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            return Ok(Err("connection closed before the request ended".into()));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut request_line = head.lines().next().unwrap_or("").split(' ');
    let (method, target) = (request_line.next(), request_line.next());
    let (Some("POST"), Some(target)) = (method, target) else {
        return Ok(Err("the stand-in answers POST only".into()));
    };
    let length = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse::<usize>().ok())
    });
    let Some(Some(length)) = length else {
        return Ok(Err("a valid content-length is required".into()));
    };
    if length > BODY_BYTES_MAX {
        return Ok(Err(format!("request body over {BODY_BYTES_MAX} bytes")));
    }
    while buf.len() < head_end + length {
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            return Ok(Err("connection closed before the body ended".into()));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    buf.truncate(head_end + length);
    Ok(Ok((target.to_owned(), buf.split_off(head_end))))
}

/// Answers one completion request body: `(status, JSON body)`.
fn complete(state: &Mutex<State>, body: &[u8]) -> (u16, String) {
    let req: CompletionBody = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => return (400, error_body(&format!("not a chat completion: {e}"))),
    };
    let mut s = lock(state);
    let reply = match &s.replies {
        Replies::Echo => Ok(echo(&req.messages)),
        Replies::Fixed { reply, .. } => Ok(reply.clone()),
        Replies::Sequence { file, replies } => replies.get(s.used).cloned().ok_or_else(|| {
            format!(
                "the stand-in's {} replies from {file} are used up",
                replies.len()
            )
        }),
    };
    s.used += 1;
    let call_number = s.used;
    if s.calls.len() < LLM_CALLS_RECORDED_MAX {
        s.calls.push(LlmCall {
            model: req.model.clone(),
            messages: req.messages.clone(),
            reply: reply.as_ref().ok().cloned(),
            error: reply.as_ref().err().cloned(),
        });
    }
    match reply {
        Err(why) => (500, error_body(&why)),
        Ok(content) => (200, completion(call_number, &req, &content).to_string()),
    }
}

fn echo(messages: &[ChatMessage]) -> String {
    messages
        .iter()
        .rev()
        .find(|m| m.role == "user")
        .or(messages.last())
        .map(|m| m.content.clone())
        .unwrap_or_default()
}

/// An OpenAI chat-completion object. `usage` counts words, not tokens:
/// the stand-in has no tokenizer, and the numbers only need to be plausible.
fn completion(n: usize, req: &CompletionBody, content: &str) -> Value {
    let prompt: usize = req
        .messages
        .iter()
        .map(|m| m.content.split_whitespace().count())
        .sum();
    let reply = content.split_whitespace().count();
    json!({
        "id": format!("chatcmpl-local-{n}"),
        "object": "chat.completion",
        "created": 0,
        "model": req.model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content},
            "finish_reason": "stop",
        }],
        "usage": {"prompt_tokens": prompt, "completion_tokens": reply, "total_tokens": prompt + reply},
    })
}

fn error_body(message: &str) -> String {
    json!({"error": {"message": message, "type": "stand_in"}}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(role: &str, content: &str) -> ChatMessage {
        ChatMessage {
            role: role.into(),
            content: content.into(),
        }
    }

    /// Sends raw bytes to the stand-in; its status line and body.
    async fn raw(stand_in: &LlmStandIn, request: &[u8]) -> (String, String) {
        let url = stand_in.config().base_url;
        let port: u16 = url
            .rsplit_once(':')
            .unwrap()
            .1
            .trim_end_matches("/v1")
            .parse()
            .unwrap();
        let mut sock = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        sock.write_all(request).await.unwrap();
        sock.shutdown().await.unwrap();
        let mut answer = String::new();
        sock.read_to_string(&mut answer).await.unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        (head.lines().next().unwrap().to_owned(), body.to_owned())
    }

    #[tokio::test]
    async fn malformed_requests_get_a_clear_refusal() {
        let stand_in = LlmStandIn::start(Replies::Echo).await.unwrap();
        let post = |path: &str, body: &str| {
            format!(
                "POST {path} HTTP/1.1\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
        };
        let huge = format!(
            "POST /v1/chat/completions HTTP/1.1\r\ncontent-length: {}\r\n\r\n",
            BODY_BYTES_MAX + 1
        );
        let cases = [
            (
                "GET /v1/chat/completions HTTP/1.1\r\n\r\n".to_owned(),
                "400",
                "POST only",
            ),
            (post("/v1/models", "{}"), "404", "POST /v1/chat/completions"),
            (
                post("/v1/chat/completions", "{\"model\": 1}"),
                "400",
                "not a chat completion",
            ),
            (
                post("/v1/chat/completions", "nonsense"),
                "400",
                "not a chat completion",
            ),
            (huge, "400", "request body over"),
            (
                "POST /v1/chat/completions HTTP/1.1\r\ncontent-length: x\r\n\r\n".to_owned(),
                "400",
                "valid content-length",
            ),
            (
                format!("POST /{} HTTP/1.1\r\n", "a".repeat(HEAD_BYTES_MAX + 10)),
                "400",
                "request head over",
            ),
            (
                "POST /v1/chat/completions HTTP/1.1\r\ncontent-length: 50\r\n\r\n{".to_owned(),
                "400",
                "closed before the body ended",
            ),
        ];
        for (request, status, why) in cases {
            let (line, body) = raw(&stand_in, request.as_bytes()).await;
            assert!(line.contains(status), "{request:.60}: {line}");
            assert!(body.contains(why), "{request:.60}: {body}");
        }
        // None of them counted as a completion; a good one still works.
        assert!(stand_in.calls().is_empty());
        let ok = post(
            "/v1/chat/completions",
            r#"{"model": "m", "messages": [{"role": "user", "content": "hi there"}]}"#,
        );
        let (line, body) = raw(&stand_in, ok.as_bytes()).await;
        assert!(line.contains("200"), "{line}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["choices"][0]["message"]["content"], "hi there");
        assert_eq!(v["usage"]["total_tokens"], 4);
        assert_eq!(stand_in.calls().len(), 1);
    }

    #[test]
    fn echo_answers_the_last_user_message() {
        let m = [
            msg("system", "be brief"),
            msg("user", "one"),
            msg("assistant", "x"),
        ];
        assert_eq!(echo(&m), "one");
        assert_eq!(echo(&[msg("system", "only")]), "only");
        assert_eq!(echo(&[]), "");
    }

    #[test]
    fn reply_files_are_text_or_a_list_of_strings() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        let object = write("o.json", "{\"label\": \"spam\"}");
        let fixed = Replies::from_file(&object, 1 << 20).unwrap();
        assert!(
            matches!(&fixed, Replies::Fixed { reply, .. } if reply == "{\"label\": \"spam\"}"),
            "{fixed:?}"
        );
        let list = write("l.json", "[\"a\", \"b\"]");
        let seq = Replies::from_file(&list, 1 << 20).unwrap();
        assert!(
            matches!(&seq, Replies::Sequence { replies, .. } if replies == &["a", "b"]),
            "{seq:?}"
        );
        let bad = write("b.json", "[\"a\", 2]");
        let e = Replies::from_file(&bad, 1 << 20).unwrap_err().to_string();
        assert!(e.ends_with("b.json: [1] is a number, not a string"), "{e}");
        let empty = write("e.json", "[]");
        let e = Replies::from_file(&empty, 1 << 20).unwrap_err().to_string();
        assert!(e.contains("needs 1 to 1000 replies"), "{e}");
        let e = Replies::from_file(&object, 3).unwrap_err().to_string();
        assert!(e.contains("the limit is 3"), "{e}");
    }
}
