//! AMQP 0.9.1 transports of the root config (RabbitMQ, through `lapin`). A link holds what
//! is needed to connect — the URL with the credentials read from `password_file` or
//! `password_env`, never logged — and one shared publisher channel in confirm mode, used by
//! `publish` steps and dead-lettering and re-opened after a connection loss. Links belong
//! to the engine and outlive every revision; consumers open their own connections.

use deployments::root::{TransportDef, TransportKind};
use deployments::RootConfig;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::Confirmation;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

pub struct AmqpLink {
    pub name: String,
    /// The configured URL, as shown to operators (it never holds credentials).
    pub url: String,
    /// The URL used to connect, with the credentials; never logged nor shown.
    connect_url: Result<String, String>,
    pub reconnect_initial: Duration,
    pub reconnect_max: Duration,
    /// Transport paused by an operator: its consumers stop consuming.
    pub paused: AtomicBool,
    /// Transport stopped by an operator: its consumers close their connections.
    pub stopped: AtomicBool,
    pub published: AtomicU64,
    pub publish_failures: AtomicU64,
    publisher: tokio::sync::Mutex<Option<(Connection, Channel)>>,
}

/// The amqp transports of a root config, by name.
pub type AmqpLinks = BTreeMap<String, Arc<AmqpLink>>;

pub fn links(root: &RootConfig) -> AmqpLinks {
    root.transports
        .iter()
        .filter(|t| t.kind == TransportKind::Amqp)
        .map(|t| (t.name.get_ref().clone(), Arc::new(AmqpLink::new(root, t))))
        .collect()
}

/// One message to publish.
pub struct Outgoing<'a> {
    pub exchange: &'a str,
    pub routing_key: &'a str,
    pub body: &'a [u8],
    pub content_type: Option<&'a str>,
    pub headers: FieldTable,
    pub persistent: bool,
    pub confirm: bool,
}

impl AmqpLink {
    fn new(root: &RootConfig, def: &TransportDef) -> AmqpLink {
        let url = def
            .url
            .as_ref()
            .map(|u| u.get_ref().clone())
            .unwrap_or_default();
        let connect_url = root.amqp_password(def).and_then(|password| {
            let mut u = url::Url::parse(&url).map_err(|e| format!("invalid broker URL: {e}"))?;
            let user = def.user.clone().unwrap_or_else(|| "guest".into());
            let password = password.unwrap_or_else(|| "guest".into());
            u.set_username(&user)
                .and_then(|_| u.set_password(Some(&password)))
                .map_err(|_| "broker URL cannot carry credentials".to_string())?;
            Ok(u.to_string())
        });
        AmqpLink {
            name: def.name.get_ref().clone(),
            url,
            connect_url,
            reconnect_initial: def.reconnect_initial,
            reconnect_max: def.reconnect_max,
            paused: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            published: AtomicU64::new(0),
            publish_failures: AtomicU64::new(0),
            publisher: tokio::sync::Mutex::new(None),
        }
    }

    /// A new connection to the broker; errors never contain the credentials.
    pub async fn connect(&self, purpose: &str) -> Result<Connection, String> {
        let url = self.connect_url.clone()?;
        let props = ConnectionProperties::default()
            .with_connection_name(LongString::from(format!("esb {purpose}")));
        answered(
            &format!("cannot connect to {}", self.url),
            Connection::connect(&url, props),
        )
        .await
    }

    async fn publisher_channel(&self) -> Result<Channel, String> {
        let mut slot = self.publisher.lock().await;
        if let Some((conn, ch)) = slot.as_ref() {
            if conn.status().connected() && ch.status().connected() {
                return Ok(ch.clone());
            }
        }
        *slot = None;
        let conn = self.connect(&format!("publisher {}", self.name)).await?;
        let ch = answered(
            &format!("cannot open a channel on {}", self.url),
            conn.create_channel(),
        )
        .await?;
        answered(
            &format!("cannot enable publisher confirms on {}", self.url),
            ch.confirm_select(ConfirmSelectOptions::default()),
        )
        .await?;
        *slot = Some((conn, ch.clone()));
        Ok(ch)
    }

    /// Publishes one message (mandatory: an unroutable message is an error), waiting for
    /// the broker's confirm when asked to.
    pub async fn publish(&self, m: Outgoing<'_>) -> Result<(), String> {
        let r = self.try_publish(&m).await;
        match &r {
            Ok(()) => {
                self.published.fetch_add(1, Relaxed);
            }
            Err(_) => {
                self.publish_failures.fetch_add(1, Relaxed);
                // The next publish opens a fresh channel.
                *self.publisher.lock().await = None;
            }
        }
        r
    }

    async fn try_publish(&self, m: &Outgoing<'_>) -> Result<(), String> {
        let ch = self.publisher_channel().await?;
        let mut props = BasicProperties::default().with_headers(m.headers.clone());
        if m.persistent {
            props = props.with_delivery_mode(2);
        }
        if let Some(ct) = m.content_type {
            props = props.with_content_type(ShortString::from(ct));
        }
        let what = format!(
            "publish to exchange \"{}\" with routing key \"{}\"",
            m.exchange, m.routing_key
        );
        let confirm = ch
            .basic_publish(
                ShortString::from(m.exchange),
                ShortString::from(m.routing_key),
                BasicPublishOptions {
                    mandatory: true,
                    ..Default::default()
                },
                m.body,
                props,
            )
            .await
            .map_err(|e| format!("{what} failed: {e}"))?;
        if !m.confirm {
            return Ok(());
        }
        match tokio::time::timeout(Duration::from_secs(30), confirm).await {
            Err(_) => Err(format!("{what}: no confirm from the broker within 30s")),
            Ok(Err(e)) => Err(format!("{what} failed: {e}")),
            Ok(Ok(Confirmation::Ack(Some(ret)))) => Err(format!(
                "{what}: unroutable (returned by the broker: {} {})",
                ret.reply_code, ret.reply_text
            )),
            Ok(Ok(Confirmation::Nack(_))) => Err(format!("{what}: refused by the broker (nack)")),
            Ok(Ok(_)) => Ok(()),
        }
    }
}

/// How long esb waits for the broker to answer one request (connect, open a channel,
/// declare a queue…): a broker that is still recovering its queues, or that accepted the
/// connection and went silent, is given up on and tried again later.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// `request`'s outcome, or an error saying `what` got no answer within [`ANSWER_WITHIN`].
pub async fn answered<T, E: std::fmt::Display>(
    what: &str,
    request: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(ANSWER_WITHIN, request).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("{what}: {e}")),
        Err(_) => Err(format!(
            "{what}: no answer from the broker within {}s (esb tries again; check that the broker is up and done recovering its queues)",
            ANSWER_WITHIN.as_secs()
        )),
    }
}

/// A string header value.
pub fn text(v: impl Into<String>) -> AMQPValue {
    AMQPValue::LongString(LongString::from(v.into()))
}

/// A header value as text, if it is one.
pub fn as_text(v: &AMQPValue) -> Option<String> {
    match v {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        AMQPValue::LongInt(i) => Some(i.to_string()),
        AMQPValue::LongLongInt(i) => Some(i.to_string()),
        AMQPValue::ShortInt(i) => Some(i.to_string()),
        AMQPValue::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(extra: &str) -> RootConfig {
        let text = format!(
            "[[transport]]\nname = \"mq\"\nkind = \"amqp\"\nurl = \"amqp://127.0.0.1:1/%2f\"\nuser = \"esb\"\n{extra}\n"
        );
        RootConfig::parse(&text, "esb.toml", std::path::Path::new(".")).unwrap()
    }

    #[tokio::test]
    async fn credentials_come_from_the_environment_and_never_show() {
        std::env::set_var("ESB_TEST_MQ_PASSWORD", "s3cret");
        let links = links(&root("password_env = \"ESB_TEST_MQ_PASSWORD\""));
        let l = &links["mq"];
        assert_eq!(l.url, "amqp://127.0.0.1:1/%2f");
        assert!(l.connect_url.as_ref().unwrap().contains("esb:s3cret@"));
        let err = l.connect("test").await.unwrap_err();
        assert!(
            err.contains("cannot connect to amqp://127.0.0.1:1/%2f"),
            "{err}"
        );
        assert!(!err.contains("s3cret"), "{err}");
    }

    #[tokio::test]
    async fn a_missing_password_source_is_the_connection_error() {
        let links = links(&root("password_file = \"no-such-file\""));
        let err = links["mq"].connect("test").await.unwrap_err();
        assert!(err.contains("cannot read password_file"), "{err}");
    }
}
