//! One session of an AMQP consumer: a connection, a channel with `basic.qos(prefetch)`, the
//! queue (declared durable, or checked passively) and `basic.consume`. Up to `concurrency`
//! messages run at once; each is acknowledged only after its pipeline finished. A session
//! ends when the consumer is paused, stopped, retired or re-bound (in-flight messages
//! finish and are acknowledged first, within the drain timeout; then the channel closes,
//! so messages prefetched but not started go back to the queue untouched), or when the
//! connection is lost (unacknowledged messages are redelivered by the broker with the
//! redelivered flag set: at-least-once).

use super::{Binding, ConsumerRuntime, Handled, Input};
use crate::amqp::{answered, as_text, text, AmqpLink, Outgoing};
use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions, BasicRejectOptions,
    QueueDeclareOptions,
};
use lapin::types::{FieldTable, ShortString};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

pub async fn session(
    rt: &Arc<ConsumerRuntime>,
    link: &Arc<AmqpLink>,
    binding: &Binding,
    gen: u64,
) -> Result<(), String> {
    let Binding::Amqp {
        queue,
        declare,
        prefetch,
        concurrency,
        ..
    } = binding
    else {
        return Ok(());
    };
    if rt.session.lock().expect("session").0 != "Disconnected" {
        rt.set_session("Connecting", None);
    }
    let conn = link
        .connect(&format!("consumer {}/{}", rt.unit, rt.name))
        .await?;
    // Every request to the broker is bounded: a broker still recovering its queues is
    // tried again later, not waited for.
    let ch = answered("cannot open a channel", conn.create_channel()).await?;
    answered(
        "basic.qos failed",
        ch.basic_qos(*prefetch, BasicQosOptions::default()),
    )
    .await?;
    let options = QueueDeclareOptions {
        durable: true,
        passive: !declare,
        ..Default::default()
    };
    let q = answered(
        &format!("queue \"{queue}\""),
        ch.queue_declare(
            ShortString::from(queue.as_str()),
            options,
            FieldTable::default(),
        ),
    )
    .await?;
    rt.depth.store(q.message_count() as i64, Relaxed);
    let mut stream = answered(
        &format!("basic.consume on \"{queue}\" failed"),
        ch.basic_consume(
            ShortString::from(queue.as_str()),
            ShortString::from(format!("esb-{}-{}", rt.unit, rt.name)),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        ),
    )
    .await?;
    rt.set_session("Connected", None);
    tracing::info!(unit = %rt.unit, consumer = %rt.name, "consuming from {}/{queue}", link.name);
    let workers = *concurrency as usize;
    let sem = Arc::new(Semaphore::new(workers));
    let mut depth_tick = tokio::time::interval(Duration::from_secs(2));
    let tick = Duration::from_millis(100);
    let result = loop {
        if rt.session_over(gen) {
            break Ok(());
        }
        let permit = tokio::select! {
            p = sem.clone().acquire_owned() => p.expect("semaphore open"),
            _ = rt.wait_change(tick) => continue,
        };
        let next = tokio::select! {
            d = stream.next() => d,
            _ = rt.wait_change(tick) => continue,
            _ = depth_tick.tick() => {
                let passive = QueueDeclareOptions { passive: true, ..Default::default() };
                let depth = ch.queue_declare(ShortString::from(queue.as_str()), passive, FieldTable::default());
                if let Ok(q) = answered("queue depth", depth).await {
                    rt.depth.store(q.message_count() as i64, Relaxed);
                }
                continue;
            }
        };
        match next {
            None => break Err("the broker cancelled the consumer".into()),
            Some(Err(e)) => break Err(format!("connection lost: {e}")),
            // Deliveries still buffered from a channel that is gone can be neither
            // acknowledged nor rejected: the broker redelivers them to the next session.
            Some(Ok(_)) if !ch.status().connected() => {
                break Err(
                    "connection lost; the broker redelivers what was not acknowledged".into(),
                )
            }
            Some(Ok(d)) => {
                let rt = rt.clone();
                let link = link.clone();
                let queue = queue.clone();
                let ch = ch.clone();
                tokio::spawn(async move {
                    deliver(&rt, &link, &queue, &ch, d, gen).await;
                    drop(permit);
                });
            }
        }
    };
    // In-flight messages finish (and are acknowledged) before the channel closes.
    let drained = tokio::time::timeout(rt.drain, sem.acquire_many(workers as u32)).await;
    if drained.is_err() {
        tracing::warn!(unit = %rt.unit, consumer = %rt.name, "messages still in flight after the drain timeout; they return to the queue");
    }
    let bye = || ShortString::from("esb consumer session ended");
    let _ = answered("channel.close", ch.close(200, bye())).await;
    let _ = answered("connection.close", conn.close(200, bye())).await;
    result
}

fn input_of(d: &Delivery, queue: &str) -> Input {
    let mut headers = http::HeaderMap::new();
    if let Some(ct) = d.properties.content_type() {
        if let Ok(v) = http::HeaderValue::from_str(ct.as_str()) {
            headers.insert(http::header::CONTENT_TYPE, v);
        }
    }
    if let Some(table) = d.properties.headers() {
        for (k, v) in table.inner() {
            let (Ok(name), Some(value)) = (
                http::HeaderName::from_bytes(k.as_str().as_bytes()),
                as_text(v).and_then(|t| http::HeaderValue::from_str(&t).ok()),
            ) else {
                continue;
            };
            headers.insert(name, value);
        }
    }
    let mut props = vec![
        ("amqp.redelivered".to_owned(), d.redelivered.to_string()),
        ("amqp.routing_key".to_owned(), d.routing_key.to_string()),
        ("amqp.exchange".to_owned(), d.exchange.to_string()),
        ("amqp.queue".to_owned(), queue.to_owned()),
    ];
    if let Some(id) = d.properties.message_id() {
        props.push(("amqp.message_id".into(), id.to_string()));
    }
    Input {
        body: bytes::Bytes::from(d.data.clone()),
        headers,
        props,
    }
}

async fn deliver(
    rt: &ConsumerRuntime,
    link: &AmqpLink,
    queue: &str,
    ch: &lapin::Channel,
    d: Delivery,
    gen: u64,
) {
    rt.received.fetch_add(1, Relaxed);
    if d.redelivered {
        rt.redelivered.fetch_add(1, Relaxed);
    }
    rt.in_flight.fetch_add(1, Relaxed);
    let mut input = input_of(&d, queue);
    let outcome = rt.handle(&mut input, gen).await;
    // The channel went away while the message ran: no acknowledgement (nor rejection) can
    // reach the broker, which redelivers the message to the next session — it is counted
    // neither acknowledged nor dead-lettered.
    if !ch.status().connected() {
        tracing::warn!(unit = %rt.unit, consumer = %rt.name, "the connection was lost while a message ran; the broker redelivers it");
        rt.in_flight.fetch_sub(1, Relaxed);
        return;
    }
    let ack = match outcome {
        Handled::Done => d.acker.ack(BasicAckOptions::default()).await.map(|_| {
            rt.acked.fetch_add(1, Relaxed);
        }),
        Handled::Abandoned => d
            .acker
            .nack(BasicNackOptions {
                requeue: true,
                ..Default::default()
            })
            .await
            .map(|_| ()),
        Handled::Failed { cause, attempts } => {
            tracing::error!(unit = %rt.unit, consumer = %rt.name, attempts, "message failed {attempts} time(s), dead-lettering it: {cause}");
            let of = rt.pipeline.load().on_failure.clone();
            match &of.dead_letter_routing_key {
                Some(rk) => {
                    let mut headers = d.properties.headers().clone().unwrap_or_default();
                    headers.insert("x-esb-failure".into(), text(cause.clone()));
                    headers.insert("x-esb-attempts".into(), text(attempts.to_string()));
                    headers.insert(
                        "x-esb-consumer".into(),
                        text(format!("{}/{}", rt.unit, rt.name)),
                    );
                    headers.insert("x-esb-queue".into(), text(queue));
                    let ct = d.properties.content_type().as_ref().map(|c| c.to_string());
                    let published = link
                        .publish(Outgoing {
                            exchange: of.dead_letter_exchange.as_deref().unwrap_or(""),
                            routing_key: rk,
                            body: &d.data,
                            content_type: ct.as_deref(),
                            headers,
                            persistent: true,
                            confirm: true,
                        })
                        .await;
                    match published {
                        Ok(()) => d.acker.ack(BasicAckOptions::default()).await.map(|_| {
                            rt.dead_lettered.fetch_add(1, Relaxed);
                        }),
                        Err(e) => {
                            tracing::error!(unit = %rt.unit, consumer = %rt.name, "dead-lettering failed, the message goes back to the queue: {e}");
                            d.acker
                                .nack(BasicNackOptions {
                                    requeue: true,
                                    ..Default::default()
                                })
                                .await
                                .map(|_| ())
                        }
                    }
                }
                // The queue's own dead-letter exchange (if any) takes it.
                None => d
                    .acker
                    .reject(BasicRejectOptions { requeue: false })
                    .await
                    .map(|_| {
                        rt.dead_lettered.fetch_add(1, Relaxed);
                    }),
            }
        }
    };
    if let Err(e) = ack {
        tracing::warn!(unit = %rt.unit, consumer = %rt.name, "acknowledgement failed (the broker redelivers the message): {e}");
    }
    rt.in_flight.fetch_sub(1, Relaxed);
}
