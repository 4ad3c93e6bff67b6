"""The device process's side: the private M of every adapter, the head, the user's data and labels.

The device holds the tokenizer and the word-embedding table (as in the paper, where the device
keeps embeddings and LM head), the r × r matrices M (zero at start), the classification head and
everything about the user's examples. It drives the cloud (see :mod:`mining.privatelora.cloud`
for the messages): for every ``MID`` it answers u = M·z and, when tuning, keeps z and u so that
for every ``GRAD`` it can accumulate ∂L/∂M = Σ_tokens ∂L/∂u·zᵀ and answer ∂L/∂z = Mᵀ·∂L/∂u.

In the ``hidden`` comparison mode the device also holds A and B (the same seeded draws as the
cloud's) and answers ΔW·x = B·M·A·x for a full hidden state x.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mining.privatelora.adapter import projections
from mining.privatelora.cloud import HIDDEN, LOWRANK
from mining.privatelora.wire import (
    BACKWARD,
    CLOSE,
    DONE,
    FORWARD,
    GRAD,
    GRAD_LAST,
    GRAD_Z,
    MID,
    MID_OUT,
    POOLED,
    SETUP,
    Channel,
    Message,
    Network,
    connect,
)

ROOT = Path(__file__).resolve().parents[2]


class Device(nn.Module):
    """Word embeddings (frozen), the private M's and the head (trainable); talks to one cloud."""

    def __init__(
        self, channel: Channel, embed: nn.Embedding, n_adapters: int, rank: int, head: nn.Linear
    ) -> None:
        super().__init__()
        self.ch = channel
        self.embed = embed.requires_grad_(False)
        self.M = nn.ParameterList([nn.Parameter(torch.zeros(rank, rank)) for _ in range(n_adapters)])
        self.head = head
        self.mode = LOWRANK
        self.A: list[torch.Tensor] = []
        self.B: list[torch.Tensor] = []
        self.pending: dict[int, tuple[torch.Tensor, torch.Tensor, int]] = {}
        self.pooled: torch.Tensor | None = None

    def setup(
        self, seed: int, mode: int = LOWRANK, network: Network | None = None, wire_bits: int = 32
    ) -> None:
        """Tell the cloud the adapter seed, what crosses, the simulated link; both ends apply it."""
        network = network or Network()
        self.mode, self.ch.network, self.ch.wire_bits = mode, network, wire_bits
        d, r = self.embed.embedding_dim, self.M[0].shape[0]
        pairs = [projections(d, d, r, seed, i) for i in range(len(self.M))] if mode == HIDDEN else []
        self.A, self.B = [a for a, _ in pairs], [b for _, b in pairs]
        ints = torch.tensor([seed, mode, wire_bits], dtype=torch.int64)
        self.ch.send(
            SETUP, [ints, torch.tensor([network.bandwidth_mbps, network.rtt_ms], dtype=torch.float64)]
        )

    def _answer(self, index: int, t: torch.Tensor) -> torch.Tensor:
        m: torch.Tensor = self.M[index]
        if self.mode == HIDDEN:
            return ((t @ self.A[index].T) @ m.T) @ self.B[index].T
        return t @ m.T

    def _on_mid(self, msg: Message, train: bool) -> None:
        t = msg.tensors[0].requires_grad_(train)
        with torch.set_grad_enabled(train):
            out = self._answer(msg.index, t)
        if train:
            self.pending[msg.call] = (t, out, msg.index)
        self.ch.send(MID_OUT, [out], msg.index, msg.call)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor, train: bool = False) -> torch.Tensor:
        """Logits (B × 2): embeddings out, adapter calls answered, pooled vector in, head here."""
        keep = mask.bool()
        with torch.no_grad():
            emb = self.embed(ids)[keep]
        self.ch.send(FORWARD, [emb, keep.sum(1).to(torch.int32)], index=int(train))
        while (msg := self.ch.recv()).kind == MID:
            self._on_mid(msg, train)
        _expect(msg.kind, POOLED)
        pooled = msg.tensors[0].requires_grad_(train)
        self.pooled = pooled if train else None
        return self.head(pooled)  # type: ignore[no-any-return]

    def backward(self, loss: torch.Tensor) -> None:
        """∂L/∂head and ∂L/∂e here, ∂L/∂e to the cloud, then ∂L/∂M from the cloud's GRAD calls."""
        assert self.pooled is not None, "backward() needs a forward(train=True) first"
        loss.backward()  # type: ignore[no-untyped-call]
        self.ch.send(
            BACKWARD, [self.pooled.grad if self.pooled.grad is not None else torch.zeros_like(self.pooled)]
        )
        while (msg := self.ch.recv()).kind in (GRAD, GRAD_LAST):
            t, out, index = self.pending.pop(msg.call)
            m = self.M[index]
            if msg.kind == GRAD:
                gt, gm = torch.autograd.grad(out, [t, m], msg.tensors[0])
                self.ch.send(GRAD_Z, [gt], index, msg.call)
            else:
                (gm,) = torch.autograd.grad(out, [m], msg.tensors[0])
            m.grad = gm if m.grad is None else m.grad + gm
        _expect(msg.kind, DONE)
        self.pending.clear()
        self.pooled = None

    def close(self) -> None:
        self.ch.send(CLOSE, [])


def _expect(kind: int, want: int) -> None:
    if kind != want:
        raise ConnectionError(f"protocol error: got message kind {kind}, expected {want}")


@contextlib.contextmanager
def cloud_process(spec: dict[str, Any], timeout: float = 120.0) -> Iterator[Channel]:
    """Start ``python -m mining.privatelora.cloud SPEC``, connect to it, stop it on exit."""
    import json

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mining.privatelora.cloud", json.dumps(spec)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if not line.startswith("READY"):
                proc.wait(timeout=10)
                err.seek(0)
                raise RuntimeError(f"the cloud process did not start:\n{err.read()[-3000:]}")
            channel = Channel(connect(int(line.split()[1]), timeout))
            try:
                yield channel
            finally:
                channel.sock.close()  # the cloud's next read fails and it exits
        finally:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
