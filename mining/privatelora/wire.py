"""The binary framing between cloud and device, with bytes counted and the network simulated.

A frame is

    u32 length of the rest | u8 kind | u16 adapter index | u32 call id | u8 tensor count
    then per tensor: u8 dtype | u8 ndim | u32 × ndim shape | raw little-endian values

so a frame of one (n × r) float32 tensor is 12 + 10 + 4·n·r bytes. Floats travel as float32,
or float16 with ``wire_bits=16`` (the paper's traffic formula counts bits per value); integers as
int32 / int64.

The simulated link delays each frame by RTT/2 + 8·bytes / bandwidth before sending it (both
directions), so a synchronous request/answer costs one RTT plus both transfer times.
"""

from __future__ import annotations

import socket
import struct
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import torch

HEADER = struct.Struct("<IBHIB")  # length, kind, index, call, count
DIMS = struct.Struct("<BB")
DTYPES = {0: torch.float32, 1: torch.float16, 2: torch.int32, 3: torch.int64, 4: torch.float64}
NUMPY = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.int64, 4: np.float64}
CODES = {v: k for k, v in DTYPES.items()}

# message kinds
SETUP, FORWARD, MID, MID_OUT, POOLED, BACKWARD, GRAD, GRAD_LAST, GRAD_Z, DONE, CLOSE = range(11)
KIND_NAMES = (
    "setup",
    "forward",
    "mid",
    "mid_out",
    "pooled",
    "backward",
    "grad",
    "grad_last",
    "grad_z",
    "done",
    "close",
)


@dataclass(frozen=True)
class Network:
    """A simulated link: bandwidth in Mbit/s (0 = unlimited) and round-trip time in ms."""

    bandwidth_mbps: float = 0.0
    rtt_ms: float = 0.0

    def delay(self, nbytes: int) -> float:
        """Seconds one frame of ``nbytes`` takes one way: RTT/2 + 8·bytes/bandwidth."""
        wire = 8 * nbytes / (self.bandwidth_mbps * 1e6) if self.bandwidth_mbps > 0 else 0.0
        return self.rtt_ms / 2000 + wire

    def label(self) -> str:
        if self.bandwidth_mbps <= 0 and self.rtt_ms <= 0:
            return "loopback (no simulated delay)"
        return f"{self.bandwidth_mbps:g} Mbit/s, RTT {self.rtt_ms:g} ms"


@dataclass
class Message:
    kind: int
    index: int
    call: int
    tensors: list[torch.Tensor]


def tensor_bytes(shape: tuple[int, ...], itemsize: int) -> int:
    """Bytes one tensor takes in a frame: dtype, ndim, the shape and the values."""
    return DIMS.size + 4 * len(shape) + itemsize * int(np.prod(shape, dtype=np.int64))


def frame_size(shapes: list[tuple[int, ...]], itemsize: int = 4) -> int:
    """Bytes of a whole frame carrying tensors of these shapes (all of one item size)."""
    return HEADER.size + sum(tensor_bytes(s, itemsize) for s in shapes)


def encode(
    kind: int, tensors: list[torch.Tensor], index: int = 0, call: int = 0, wire_bits: int = 32
) -> bytes:
    parts = []
    for t in tensors:
        t = t.detach().contiguous()
        if t.is_floating_point():
            t = t.to(torch.float16 if wire_bits == 16 else torch.float32)
        parts.append(DIMS.pack(CODES[t.dtype], t.dim()) + struct.pack(f"<{t.dim()}I", *t.shape))
        parts.append(t.numpy().tobytes())
    body = b"".join(parts)
    return HEADER.pack(HEADER.size - 4 + len(body), kind, index, call, len(tensors)) + body


def decode(frame: bytes) -> Message:
    """A frame without its leading length; floats come back as float32."""
    _, kind, index, call, count = HEADER.unpack_from(b"\0\0\0\0" + frame[: HEADER.size - 4])
    pos, tensors = HEADER.size - 4, []
    for _ in range(count):
        code, ndim = DIMS.unpack_from(frame, pos)
        shape = struct.unpack_from(f"<{ndim}I", frame, pos + DIMS.size)
        pos += DIMS.size + 4 * ndim
        dtype = np.dtype(NUMPY[code])
        n = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        t = torch.from_numpy(np.frombuffer(frame, dtype=dtype, count=n // dtype.itemsize, offset=pos).copy())
        t = t.reshape(shape)
        tensors.append(t.float() if t.is_floating_point() else t)
        pos += n
    return Message(kind, index, call, tensors)


@dataclass
class Channel:
    """One end of the TCP connection: frames out and in, bytes counted per message kind."""

    sock: socket.socket
    network: Network = field(default_factory=Network)
    wire_bits: int = 32
    sent: Counter[str] = field(default_factory=Counter)
    received: Counter[str] = field(default_factory=Counter)
    seconds_delayed: float = 0.0

    def send(self, kind: int, tensors: list[torch.Tensor], index: int = 0, call: int = 0) -> None:
        frame = encode(kind, tensors, index, call, self.wire_bits)
        pause = self.network.delay(len(frame))
        if pause > 0:
            time.sleep(pause)
            self.seconds_delayed += pause
        self.sock.sendall(frame)
        self.sent[KIND_NAMES[kind]] += len(frame)

    def recv(self) -> Message:
        head = self._exactly(4)
        (length,) = struct.unpack("<I", head)
        body = self._exactly(length)
        msg = decode(body)
        self.received[KIND_NAMES[msg.kind]] += 4 + length
        return msg

    def _exactly(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("the other end closed the connection")
            buf += chunk
        return bytes(buf)

    def total(self) -> int:
        """Bytes this end sent plus received."""
        return sum(self.sent.values()) + sum(self.received.values())

    def reset_counts(self) -> None:
        self.sent.clear()
        self.received.clear()
        self.seconds_delayed = 0.0


def connect(port: int, timeout: float = 60.0) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock
