"""The provider sandbox: a simulator of four payment channels, with a wallet and a ledger."""

from payonce.sandbox.app import Sandbox, sandbox_root_app
from payonce.sandbox.boleto_wire import BoletoCredentials
from payonce.sandbox.credentials import AlipayCredentials
from payonce.sandbox.faults import FaultSettings
from payonce.sandbox.keys import SandboxKeys
from payonce.sandbox.wechat_credentials import WechatCredentials

__all__ = [
    "AlipayCredentials",
    "BoletoCredentials",
    "FaultSettings",
    "Sandbox",
    "SandboxKeys",
    "WechatCredentials",
    "sandbox_root_app",
]
