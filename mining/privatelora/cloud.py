"""The cloud process: the frozen encoder with PrivateLoRA's frozen A and B, served on 127.0.0.1.

Run as ``python -m mining.privatelora.cloud '<json spec>'``; it prints ``READY <port>`` and serves
one device connection until ``CLOSE``. What the cloud holds: W₀ of every layer (position and
token-type embeddings, LayerNorms, the encoder stack), A and B of every adapter, the mean pooling.
What it never holds: M, its gradient, the head, the labels, the loss.

Per batch (B sequences, n real tokens packed without padding):

- ``FORWARD`` (device → cloud): word embeddings of the n tokens (n × d) and the B lengths;
- for each adapted projection, in layer order: ``MID`` z = A·x (n × r) out, ``MID_OUT``
  u = M·z (n × r) back, then h = W₀·x + B·u — or, in the ``hidden`` comparison mode, x (n × d)
  out and ΔW·x (n × d) back, the device holding A, M and B;
- ``POOLED`` (cloud → device): the mean-pooled output e (B × d).

Tuning adds ``BACKWARD`` (∂L/∂e, B × d) and, in reverse layer order, ``GRAD`` ∂L/∂u (n × r) out
and ``GRAD_Z`` ∂L/∂z = Mᵀ·∂L/∂u (n × r) back — ``GRAD_LAST`` with no answer where the cloud needs
no ∂L/∂z (the first layer's adapters, whose input is not differentiated), then ``DONE``.
"""

from __future__ import annotations

import json
import socket
import sys
from typing import Any

import torch
from torch import nn

from mining.privatelora.adapter import AdapterConfig, PrivateLoRALinear, attach, projections
from mining.privatelora.backbone import BackboneSpec, load_backbone, mean_pool
from mining.privatelora.wire import (
    BACKWARD,
    CLOSE,
    DONE,
    FORWARD,
    GRAD,
    GRAD_LAST,
    MID,
    MID_OUT,
    POOLED,
    SETUP,
    Channel,
    Network,
)

LOWRANK, HIDDEN = 0, 1


class Link:
    """The cloud's end of the adapter branch: ships activations to the device and back."""

    def __init__(self, channel: Channel) -> None:
        self.ch = channel
        self.keep = torch.ones(0, dtype=torch.bool)  # real tokens of the current batch
        self.calls = 0

    def pack(self, t: torch.Tensor) -> torch.Tensor:
        return t[self.keep]

    def unpack(self, packed: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        out = like.new_zeros(*like.shape[:-1], packed.shape[-1])
        out[self.keep] = packed.to(like.dtype)
        return out

    def forward_mid(self, index: int, call: int, t: torch.Tensor) -> torch.Tensor:
        self.ch.send(MID, [self.pack(t)], index, call)
        msg = self.ch.recv()
        _expect(msg.kind, MID_OUT)
        return self.unpack(msg.tensors[0], t)

    def backward_mid(self, index: int, call: int, g: torch.Tensor, like: torch.Tensor, need: bool) -> Any:
        self.ch.send(GRAD if need else GRAD_LAST, [self.pack(g)], index, call)
        if not need:
            return None
        msg = self.ch.recv()
        return self.unpack(msg.tensors[0], like)


class _Remote(torch.autograd.Function):
    """u = M·t computed on the device; backward asks the device for ∂L/∂t = Mᵀ·∂L/∂u."""

    @staticmethod
    def forward(ctx: Any, t: torch.Tensor, anchor: torch.Tensor, link: Link, index: int) -> torch.Tensor:
        link.calls += 1
        ctx.link, ctx.index, ctx.call = link, index, link.calls
        ctx.save_for_backward(t)
        return link.forward_mid(index, link.calls, t)

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[Any, None, None, None]:
        (t,) = ctx.saved_tensors
        return ctx.link.backward_mid(ctx.index, ctx.call, g, t, ctx.needs_input_grad[0]), None, None, None


def remote(t: torch.Tensor, anchor: torch.Tensor, link: Link, index: int) -> torch.Tensor:
    out: torch.Tensor = _Remote.apply(t, anchor, link, index)  # type: ignore[no-untyped-call]
    return out


class Cloud:
    """The encoder with remote adapters; ``mode`` picks what crosses: A·x (lowrank) or x (hidden)."""

    def __init__(self, encoder: nn.Module, adapters: list[PrivateLoRALinear], channel: Channel) -> None:
        self.encoder, self.adapters, self.ch = encoder, adapters, channel
        self.link = Link(channel)
        self.mode = LOWRANK
        self.anchor = torch.zeros((), requires_grad=True)  # makes the branch differentiable
        self.pooled: torch.Tensor | None = None
        for a in adapters:
            a.remote = self._branch(a)

    def _branch(self, a: PrivateLoRALinear) -> Any:
        def branch(x: torch.Tensor) -> torch.Tensor:
            anchor = self.anchor if torch.is_grad_enabled() else self.anchor.detach()
            if self.mode == HIDDEN:
                return remote(x, anchor, self.link, a.index)
            return remote(x @ a.A.T, anchor, self.link, a.index) @ a.B.T

        return branch

    def setup(self, seed: int, mode: int, wire_bits: int, network: Network) -> None:
        self.mode, self.ch.wire_bits, self.ch.network = mode, wire_bits, network
        for a in self.adapters:
            a.A, a.B = projections(a.base.in_features, a.base.out_features, a.M.shape[0], seed, a.index)

    def forward(self, emb: torch.Tensor, lengths: torch.Tensor, train: bool) -> torch.Tensor:
        """The encoder on re-padded embeddings; returns the mean-pooled output e (B × d)."""
        steps = torch.arange(int(lengths.max()))
        mask = steps[None, :] < lengths[:, None]
        x = emb.new_zeros(len(lengths), len(steps), emb.shape[-1])
        x[mask] = emb
        self.link.keep = mask
        with torch.set_grad_enabled(train):
            hidden = self.encoder(inputs_embeds=x, attention_mask=mask.long()).last_hidden_state
            return mean_pool(hidden, mask)

    def serve(self) -> None:
        while True:
            msg = self.ch.recv()
            if msg.kind == CLOSE:
                return
            if msg.kind == SETUP:
                ints, floats = msg.tensors
                self.setup(
                    int(ints[0]), int(ints[1]), int(ints[2]), Network(float(floats[0]), float(floats[1]))
                )
            elif msg.kind == FORWARD:
                self.pooled = self.forward(msg.tensors[0], msg.tensors[1], train=bool(msg.index))
                self.ch.send(POOLED, [self.pooled])
            elif msg.kind == BACKWARD:
                assert self.pooled is not None, "BACKWARD before a training FORWARD"
                self.pooled.backward(msg.tensors[0])  # type: ignore[no-untyped-call]
                self.pooled = None
                self.ch.send(DONE, [])
            else:
                raise ConnectionError(f"cloud: unexpected message kind {msg.kind}")


def _expect(kind: int, want: int) -> None:
    if kind != want:
        raise ConnectionError(f"protocol error: got message kind {kind}, expected {want}")


def main(argv: list[str]) -> None:
    """Build the cloud from a JSON spec, print ``READY <port>`` and serve one connection."""
    spec = json.loads(argv[0])
    torch.set_num_threads(int(spec.get("threads", 1)))
    encoder = load_backbone(BackboneSpec(**spec["backbone"]))
    cfg = AdapterConfig(
        "privatelora", int(spec["rank"]), tuple(spec["targets"]), seed=int(spec.get("seed", 0))
    )
    adapters = [a for a in attach(encoder, cfg) if isinstance(a, PrivateLoRALinear)]
    server = socket.create_server(("127.0.0.1", 0))
    print(f"READY {server.getsockname()[1]}", flush=True)
    conn, _ = server.accept()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    with conn, server:
        Cloud(encoder, adapters, Channel(conn)).serve()


if __name__ == "__main__":
    main(sys.argv[1:])
