"""The channels the sandbox simulates, built from its shared context and their keys."""

from __future__ import annotations

from payonce.sandbox.alipay import build_alipay
from payonce.sandbox.boleto import build_boleto
from payonce.sandbox.channel import SandboxChannel, SandboxContext
from payonce.sandbox.keys import SandboxKeys
from payonce.sandbox.paypal import build_paypal
from payonce.sandbox.wechat import build_wechat


def build_channels(context: SandboxContext, keys: SandboxKeys) -> list[SandboxChannel]:
    return [
        build_alipay(context, keys.alipay),
        build_wechat(context, keys.wechat),
        build_boleto(context, keys.boleto),
        build_paypal(context, keys.paypal),
    ]
