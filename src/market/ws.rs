//! What the streaming providers share: open a WebSocket, read its text frames with a limit on
//! silence, and turn each way it can fail into a [`StreamEnd`].

use super::{FeedEvent, StreamEnd};
use futures::{SinkExt, StreamExt};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{self, Message, client::IntoClientRequest};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Open the stream at `url` within `within`. An HTTP answer that says "not you" (401, 403,
/// 429) is a refusal; anything else that fails is a drop worth retrying.
pub(crate) async fn connect(name: &str, url: &str, within: Duration) -> Result<Ws, StreamEnd> {
    let request = url.into_client_request().map_err(|e| {
        StreamEnd::Refused(format!(
            "{name} stream address {} is not usable: {e}",
            crate::net::Shown(url)
        ))
    })?;
    match tokio::time::timeout(within, tokio_tungstenite::connect_async(request)).await {
        Err(_) => Err(StreamEnd::Dropped(format!(
            "{name} stream: no connection within {within:?}"
        ))),
        Ok(Ok((ws, _))) => Ok(ws),
        Ok(Err(tungstenite::Error::Http(response))) => {
            let status = response.status();
            let why = format!("{name} stream refused the connection: HTTP {status}");
            if matches!(status.as_u16(), 401 | 403 | 429) {
                Err(StreamEnd::Refused(why))
            } else {
                Err(StreamEnd::Dropped(why))
            }
        }
        Ok(Err(e @ tungstenite::Error::Url(_))) => Err(StreamEnd::Refused(format!(
            "{name} stream address {} is not usable: {e}",
            crate::net::Shown(url)
        ))),
        Ok(Err(e)) => Err(StreamEnd::Dropped(format!(
            "{name} stream: {}",
            crate::net::redact_text(&e.to_string())
        ))),
    }
}

/// The next text frame, or why the stream ended: silence longer than `silence`, a close, a
/// broken connection, or the receiver of the events gone.
pub(crate) async fn next_text(
    name: &str,
    ws: &mut Ws,
    silence: Duration,
    tx: &mpsc::Sender<FeedEvent>,
) -> Result<String, StreamEnd> {
    next_text_or_ping(name, ws, silence, tx, false).await
}

/// Like [`next_text`], for a stream that may rightly stay silent (US stocks outside market
/// hours, a thinly traded ticker): after `silence` it pings, and only a ping left unanswered
/// for another `silence` counts as a dead connection.
pub(crate) async fn next_text_or_ping(
    name: &str,
    ws: &mut Ws,
    silence: Duration,
    tx: &mpsc::Sender<FeedEvent>,
    ping_when_silent: bool,
) -> Result<String, StreamEnd> {
    let mut pinged = false;
    loop {
        let frame = tokio::select! {
            _ = tx.closed() => return Err(StreamEnd::Closed),
            f = tokio::time::timeout(silence, ws.next()) => f,
        };
        if frame.is_ok() {
            pinged = false;
        }
        match frame {
            Err(_) if ping_when_silent && !pinged => {
                pinged = true;
                ws.send(Message::Ping(Default::default()))
                    .await
                    .map_err(|e| StreamEnd::Dropped(format!("{name} stream: ping failed: {e}")))?;
            }
            Err(_) if pinged => {
                return Err(StreamEnd::Dropped(format!(
                    "{name} stream: nothing received for {silence:?}, not even an answer to a ping"
                )));
            }
            Err(_) => {
                return Err(StreamEnd::Dropped(format!(
                    "{name} stream: nothing received for {silence:?}"
                )));
            }
            Ok(None) => return Err(StreamEnd::Dropped(format!("{name} stream: closed"))),
            Ok(Some(Err(e))) => return Err(StreamEnd::Dropped(format!("{name} stream: {e}"))),
            Ok(Some(Ok(Message::Text(text)))) => return Ok(text.as_str().to_owned()),
            Ok(Some(Ok(Message::Close(frame)))) => {
                let why = frame
                    .map(|f| format!("{} {}", u16::from(f.code), f.reason))
                    .unwrap_or_default();
                return Err(StreamEnd::Dropped(format!(
                    "{name} stream: closed by the server {why}"
                )));
            }
            // Pings are answered by tungstenite itself; any frame shows the stream is alive.
            Ok(Some(Ok(Message::Binary(_)))) => {
                tracing::debug!("{name} stream: binary frame skipped");
            }
            Ok(Some(Ok(_))) => {}
        }
    }
}

/// Send one text frame.
pub(crate) async fn send_text(name: &str, ws: &mut Ws, text: String) -> Result<(), StreamEnd> {
    ws.send(Message::text(text))
        .await
        .map_err(|e| StreamEnd::Dropped(format!("{name} stream: sending failed: {e}")))
}

/// Hand events on; the receiver gone ends the stream.
pub(crate) async fn deliver(
    tx: &mpsc::Sender<FeedEvent>,
    event: FeedEvent,
) -> Result<(), StreamEnd> {
    tx.send(event).await.map_err(|_| StreamEnd::Closed)
}

/// Close politely; the stream is over either way.
pub(crate) async fn close(mut ws: Ws) {
    let _ = tokio::time::timeout(Duration::from_millis(200), ws.close(None)).await;
}
