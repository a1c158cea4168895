"""paho's MQTT client with a bulk receive path for the gateway.

Measured on the 2-core development machine, a bare paho 2.2 subscriber drains
a QoS 1 backlog at about 22k msg/s (MQTT 3.1.1), while a loop that parses the
PUBLISH packets out of 256 KiB socket reads reaches about 650k msg/s. paho
reads every packet with at least three ``recv`` calls (command byte, each
length byte, body), builds an ``MQTTMessage`` with a UTF-8 topic and a debug
log line, and goes back to ``select()`` after each packet.

`BufferedClient` keeps paho for everything but the stream of PUBLISH packets
(connection, session, subscriptions, keepalive, reconnects, TLS, MQTT 5):

- socket reads fill a 256 KiB buffer;
- the complete PUBLISH packets at the front of that buffer are cut out by
  `_take_publishes` and handed to ``on_publishes`` as one list of
  `Publish` tuples (raw topic bytes, packet id, QoS, payload);
- any other packet (CONNACK, SUBACK, PINGRESP, a QoS 2 PUBLISH, an MQTT 5
  PUBLISH that carries properties such as a topic alias) goes through paho's
  own parser, which reads it from the same buffer and calls ``on_message``;
- `ack_many` acknowledges a committed batch with one write of all its PUBACKs.

It overrides paho's private ``_sock_recv`` and relies on other private parts
(``_in_packet``, ``_packet_read``, ``_packet_queue``, ``_out_packet``,
``_last_bytes_received``), so paho is pinned below 3 and the gateway tests exercise this class end to end against a
real Mosquitto, with both protocol versions.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Callable, Iterable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.client import MQTT_LOG_ERR, PUBACK, MQTTErrorCode, MQTTMessage, time_func

READ_CHUNK = 256 * 1024
_PUBACK = struct.Struct("!BBH")

# (topic as received, packet id, QoS, payload). A plain tuple: one is built for
# every message, and a tuple costs a fraction of an object.
Publish = tuple[bytes, int, int, bytes]
_MAX_LENGTH_BYTES = 4  # MQTT's Remaining Length is at most four bytes


class BufferedClient(mqtt.Client):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rbuf = b""
        self._rpos = 0
        self.on_publishes: Callable[[list[Publish]], None] | None = None
        # Called when a read finds the socket empty: the broker has sent all it had.
        self.on_drained: Callable[[], None] | None = None

    # --- paho's reads, served from the buffer -------------------------------------------

    def _sock_recv(self, bufsize: int) -> bytes:
        buffered = len(self._rbuf) - self._rpos
        if buffered > 0:
            start = self._rpos
            self._rpos = min(start + bufsize, len(self._rbuf))
            return self._rbuf[start : self._rpos]
        data = super()._sock_recv(max(bufsize, READ_CHUNK))  # BlockingIOError when nothing is there
        if len(data) <= bufsize:
            self._rbuf, self._rpos = b"", 0
            return data
        self._rbuf, self._rpos = data, bufsize
        return data[:bufsize]

    def _sock_close(self) -> None:
        # Bytes read from a connection that is gone must never be parsed on the next one.
        self._rbuf, self._rpos = b"", 0
        super()._sock_close()

    def pending_bytes(self) -> int:
        return len(self._rbuf) - self._rpos

    # --- the read loop ------------------------------------------------------------------

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        """Read and dispatch until the socket has nothing more for now.

        Stopping while complete packets are still buffered would strand them:
        ``select()`` only sees the socket. Acknowledgements queued by the writer
        thread meanwhile are written between reads, so a long backlog never holds
        them back.
        """
        while True:
            if self._sock is None:
                return MQTTErrorCode.MQTT_ERR_NO_CONN
            if self.on_publishes is not None and self._in_packet["command"] == 0:
                batch, at_packet = self._take_publishes()
                if batch:
                    self._deliver(batch)
                    if self._out_packet:
                        rc = self.loop_write()
                        if rc:
                            return rc
                    continue
                if not at_packet:
                    rc = self._fill()
                    if rc is not None:
                        return rc
                    continue
            # One packet through paho: the buffer starts with a packet the bulk path
            # leaves to paho, or paho is part-way through one.
            rc = self._packet_read()
            if rc > 0:
                return self._loop_rc_handle(rc)
            if rc == MQTTErrorCode.MQTT_ERR_AGAIN:
                return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _fill(self) -> MQTTErrorCode | None:
        """Append one socket read to the buffer; a return code when the loop must stop."""
        try:
            data = mqtt.Client._sock_recv(self, READ_CHUNK)
        except BlockingIOError:
            if self.on_drained is not None:
                self.on_drained()
            return MQTTErrorCode.MQTT_ERR_SUCCESS  # a partial packet waits in the buffer for the rest
        except OSError as err:
            self._easy_log(MQTT_LOG_ERR, "failed to receive on socket: %s", err)
            return self._loop_rc_handle(MQTTErrorCode.MQTT_ERR_CONN_LOST)
        if not data:
            return self._loop_rc_handle(MQTTErrorCode.MQTT_ERR_CONN_LOST)
        rest = self._rbuf[self._rpos :]
        self._rbuf = rest + data if rest else data
        self._rpos = 0
        with self._msgtime_mutex:
            self._last_bytes_received = time_func()
        return None

    def _take_publishes(self) -> tuple[list[Publish], bool]:
        """Cut the complete QoS 0/1 PUBLISH packets off the front of the buffer.

        Returns them and whether the buffer now starts with a complete packet that
        paho must handle. Runs for every message: plain integer and slice work on
        the buffer, no object per packet but the tuple.
        """
        buf, pos, size = self._rbuf, self._rpos, len(self._rbuf)
        v5 = self._protocol == mqtt.MQTTv5
        out: list[Publish] = []
        append = out.append
        at_packet = False
        while pos + 1 < size:
            command = buf[pos]
            i = pos + 1
            byte = buf[i]
            i += 1
            length = byte & 127
            if byte & 128:
                shift = 7
                while byte & 128:
                    if i >= size or i - pos > _MAX_LENGTH_BYTES:
                        break
                    byte = buf[i]
                    i += 1
                    length |= (byte & 127) << shift
                    shift += 7
                if byte & 128:
                    # Incomplete, or longer than MQTT allows: paho reads it and
                    # reports a protocol error for the second case.
                    at_packet = i - pos > _MAX_LENGTH_BYTES
                    break
            end = i + length
            if end > size:
                break
            qos = (command >> 1) & 3
            if command & 0xF0 != 0x30 or qos == 2 or qos == 3 or length < 2:
                at_packet = True
                break
            topic_end = i + 2 + ((buf[i] << 8) | buf[i + 1])
            body = topic_end
            mid = 0
            if qos:
                mid = (buf[body] << 8) | buf[body + 1] if body + 2 <= end else 0
                body += 2
            if v5:
                if body >= end or buf[body] != 0:  # properties (a topic alias...): paho decodes them
                    at_packet = True
                    break
                body += 1
            if body > end:  # the lengths disagree: paho rejects the packet as malformed
                at_packet = True
                break
            append((buf[i + 2 : topic_end], mid, qos, buf[body:end]))
            pos = end
        self._rpos = pos
        return out, at_packet

    def _deliver(self, batch: list[Publish]) -> None:
        on_publishes = self.on_publishes
        if on_publishes is None:
            return
        with self._in_callback_mutex:
            try:
                on_publishes(batch)
            except Exception as err:
                self._easy_log(MQTT_LOG_ERR, "Caught exception in on_publishes: %s", err)
                if not self.suppress_exceptions:
                    raise

    def _handle_on_message(self, message: MQTTMessage) -> None:
        # paho's own path (packets the bulk path leaves to it). The gateway
        # registers no per-topic callbacks, so paho's topic matcher is skipped.
        on_message = self.on_message
        if on_message is None:
            return
        with self._in_callback_mutex:
            try:
                on_message(self, self._userdata, message)
            except Exception as err:
                self._easy_log(MQTT_LOG_ERR, "Caught exception in on_message: %s", err)
                if not self.suppress_exceptions:
                    raise

    # --- acknowledgements ----------------------------------------------------------------

    def ack_many(self, mids: Iterable[int]) -> None:
        """Acknowledge QoS 1 messages (in the order received) with a single write."""
        pack = _PUBACK.pack
        data = b"".join([pack(PUBACK, 2, mid) for mid in mids])
        if data:
            self._packet_queue(PUBACK, data, 0, 0)


def stop_network(client: mqtt.Client) -> None:
    """disconnect() and join paho's network thread. paho clears its thread attribute as the
    thread ends, which races with loop_stop's own check-then-join: keep the thread and join it."""
    network = getattr(client, "_thread", None)
    client.disconnect()
    try:
        client.loop_stop()
    except AttributeError:  # the thread ended between loop_stop's check and its join
        pass
    if network is not None and network is not threading.current_thread():
        network.join()
