"""The key material of every sandbox channel, made once and shared with payonce in development."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from payonce.sandbox.boleto_wire import BoletoCredentials
from payonce.sandbox.credentials import AlipayCredentials
from payonce.sandbox.paypal_credentials import PaypalCredentials
from payonce.sandbox.wechat_credentials import WechatCredentials


@dataclass(frozen=True)
class SandboxKeys:
    """One merchant account per channel, as registered with the sandbox."""

    alipay: AlipayCredentials
    wechat: WechatCredentials = field(default_factory=WechatCredentials.generate)
    boleto: BoletoCredentials = field(default_factory=BoletoCredentials.generate)
    paypal: PaypalCredentials = field(default_factory=PaypalCredentials.generate)

    @classmethod
    def generate(cls) -> SandboxKeys:
        return cls(alipay=AlipayCredentials.generate())

    @classmethod
    def load_or_create(cls, directory: Path) -> SandboxKeys:
        """The keys stored in ``directory`` (one JSON file per channel), made on first use."""
        return cls(
            alipay=AlipayCredentials.load_or_create(directory / "alipay.json"),
            wechat=WechatCredentials.load_or_create(directory / "wechat.json"),
            boleto=BoletoCredentials.load_or_create(directory / "boleto.json"),
            paypal=PaypalCredentials.load_or_create(directory / "paypal.json"),
        )
