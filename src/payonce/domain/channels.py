"""The payment channels and platforms payonce knows, and what each channel can do."""

from __future__ import annotations

from enum import StrEnum


class Channel(StrEnum):
    ALIPAY = "alipay"
    WECHAT = "wechat"
    PAYPAL = "paypal"
    BOLETO = "boleto"


class Platform(StrEnum):
    PC = "pc"
    WAP = "wap"
    APP = "app"


# Channels whose open trades can be closed at the provider. A Boleto voucher, once issued,
# cannot be cancelled, so at-most-once on it rests on refunding any extra capture.
CLOSABLE_CHANNELS: frozenset[Channel] = frozenset({Channel.ALIPAY, Channel.WECHAT, Channel.PAYPAL})


def can_close(channel: Channel) -> bool:
    return channel in CLOSABLE_CHANNELS
