//! `ctx.llm.complete`: an OpenAI-compatible chat-completions client.
//!
//! The endpoint is platform configuration (trusted), so it does not go through
//! the SSRF guard; what plugins control is bounded instead: models come from
//! an allowlist, message count and size are capped, and so is `max_tokens`.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::JsError;

/// Messages per completion request.
pub const LLM_MESSAGES_MAX: usize = 100;
/// Total characters of message content per request.
pub const LLM_PROMPT_BYTES_MAX: usize = 256 * 1024;
/// Upper bound on `max_tokens` a plugin may ask for.
pub const LLM_MAX_TOKENS_MAX: u32 = 8_192;
/// One completion may take at most this long, whatever the deadline left.
pub const LLM_TIMEOUT_MS_MAX: u64 = 60_000;
/// Response bodies are JSON of one completion; anything larger is refused.
pub const LLM_RESPONSE_BYTES_MAX: usize = 2 * 1024 * 1024;

/// Platform LLM settings (`EXTENSOR_LLM_BASE_URL`, `EXTENSOR_LLM_API_KEY`,
/// `EXTENSOR_LLM_MODELS` comma separated, first is the default).
#[derive(Clone, Debug)]
pub struct LlmConfig {
    /// e.g. `https://api.openai.com/v1`; `/chat/completions` is appended.
    pub base_url: String,
    pub api_key: Option<String>,
    /// Allowed models; the first is used when the plugin names none.
    pub models: Vec<String>,
}

impl LlmConfig {
    pub fn from_env() -> Option<LlmConfig> {
        let base_url = std::env::var("EXTENSOR_LLM_BASE_URL").ok()?;
        let models = std::env::var("EXTENSOR_LLM_MODELS")
            .unwrap_or_default()
            .split(',')
            .map(|m| m.trim().to_owned())
            .filter(|m| !m.is_empty())
            .collect();
        Some(LlmConfig {
            base_url,
            api_key: std::env::var("EXTENSOR_LLM_API_KEY").ok(),
            models,
        })
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

/// `ctx.llm.complete({messages, model, temperature, max_tokens})`.
#[derive(Debug, Deserialize)]
pub struct CompletionRequest {
    pub messages: Vec<ChatMessage>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default)]
    pub max_tokens: Option<u32>,
}

pub struct LlmClient {
    config: LlmConfig,
    client: reqwest::Client,
}

impl LlmClient {
    pub fn new(config: LlmConfig) -> Result<LlmClient, JsError> {
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .map_err(|e| JsError::Internal(format!("llm client: {e}")))?;
        Ok(LlmClient { config, client })
    }

    /// Returns `{content, model, finish_reason, usage}`.
    pub async fn complete(
        &self,
        req: CompletionRequest,
        deadline: Instant,
    ) -> Result<Value, JsError> {
        let model = self.pick_model(req.model.as_deref())?;
        check_messages(&req.messages)?;
        let mut body = json!({"model": model, "messages": req.messages});
        if let Some(t) = req.temperature {
            body["temperature"] = json!(t.clamp(0.0, 2.0));
        }
        if let Some(m) = req.max_tokens {
            body["max_tokens"] = json!(m.min(LLM_MAX_TOKENS_MAX));
        }
        let url = format!(
            "{}/chat/completions",
            self.config.base_url.trim_end_matches('/')
        );
        let left = deadline.saturating_duration_since(Instant::now())
            + Duration::from_millis(crate::config::HOST_TIMEOUT_SLACK_MS);
        let mut rb = self
            .client
            .post(url)
            .timeout(left.min(Duration::from_millis(LLM_TIMEOUT_MS_MAX)))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string());
        if let Some(key) = &self.config.api_key {
            rb = rb.bearer_auth(key);
        }
        let resp = rb.send().await.map_err(|e| host(e.to_string()))?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| host(e.to_string()))?;
        if bytes.len() > LLM_RESPONSE_BYTES_MAX {
            return Err(host(format!(
                "response over {LLM_RESPONSE_BYTES_MAX} bytes"
            )));
        }
        if !status.is_success() {
            let text = String::from_utf8_lossy(&bytes);
            return Err(host(format!(
                "endpoint answered {status}: {}",
                crate::logs::cut(&text, 300)
            )));
        }
        parse_completion(&bytes)
    }

    fn pick_model(&self, asked: Option<&str>) -> Result<String, JsError> {
        match asked {
            None => self
                .config
                .models
                .first()
                .cloned()
                .ok_or_else(|| bad("no model given and the platform has no default".into())),
            Some(m) if self.config.models.iter().any(|a| a == m) => Ok(m.to_owned()),
            Some(m) => Err(bad(format!(
                "model `{}` is not in the platform's allowlist",
                crate::logs::cut(m, 100)
            ))),
        }
    }
}

fn check_messages(messages: &[ChatMessage]) -> Result<(), JsError> {
    if messages.is_empty() || messages.len() > LLM_MESSAGES_MAX {
        return Err(bad(format!(
            "`messages` needs 1 to {LLM_MESSAGES_MAX} entries"
        )));
    }
    let bytes: usize = messages.iter().map(|m| m.content.len()).sum();
    if bytes > LLM_PROMPT_BYTES_MAX {
        return Err(bad(format!(
            "messages total {bytes} bytes; the limit is {LLM_PROMPT_BYTES_MAX}"
        )));
    }
    if let Some(m) = messages
        .iter()
        .find(|m| !matches!(m.role.as_str(), "system" | "user" | "assistant"))
    {
        return Err(bad(format!(
            "role `{}` must be system, user or assistant",
            crate::logs::cut(&m.role, 50)
        )));
    }
    Ok(())
}

fn parse_completion(bytes: &[u8]) -> Result<Value, JsError> {
    let v: Value =
        serde_json::from_slice(bytes).map_err(|e| host(format!("response is not JSON: {e}")))?;
    let choice = v
        .get("choices")
        .and_then(|c| c.get(0))
        .ok_or_else(|| host("response has no choices".into()))?;
    let content = choice
        .pointer("/message/content")
        .and_then(Value::as_str)
        .ok_or_else(|| host("response choice has no message content".into()))?;
    Ok(json!({
        "content": content,
        "model": v.get("model").cloned().unwrap_or(Value::Null),
        "finish_reason": choice.get("finish_reason").cloned().unwrap_or(Value::Null),
        "usage": v.get("usage").cloned().unwrap_or(Value::Null),
    }))
}

fn bad(message: String) -> JsError {
    JsError::InvalidArgument {
        op: "ctx.llm.complete",
        message,
    }
}

fn host(message: String) -> JsError {
    JsError::Host {
        op: "ctx.llm.complete",
        message,
    }
}
