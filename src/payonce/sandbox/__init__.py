"""The provider sandbox: a payment provider simulator (Alipay first) with a wallet and a ledger."""

from payonce.sandbox.app import Sandbox, sandbox_root_app
from payonce.sandbox.credentials import AlipayCredentials
from payonce.sandbox.faults import FaultSettings

__all__ = ["AlipayCredentials", "FaultSettings", "Sandbox", "sandbox_root_app"]
