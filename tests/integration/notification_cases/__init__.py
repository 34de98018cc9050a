"""The notification matrix's cases: forged, tampered, replayed and garbled variants of a genuine
notification, per channel, each with the reason payonce must refuse it for.

Every case starts from the genuine notification of a real trade the shopper paid in the
wallet (rendered by the sandbox as it would be sent now) and changes one thing: the signature,
a byte of the body after signing, a business field validly re-signed with the provider's key
(a leaked key, or a provider mix-up), the algorithm or key named, the timestamp, the body's
shape, or the endpoint it is posted to.
"""

from __future__ import annotations

from tests.integration.notification_cases.alipay import ALIPAY
from tests.integration.notification_cases.boleto import BOLETO
from tests.integration.notification_cases.common import Case, Forged, Scene
from tests.integration.notification_cases.paypal import PAYPAL
from tests.integration.notification_cases.wechat import WECHAT

__all__ = ["CASES", "Case", "Forged", "Scene"]

CASES: dict[str, list[Case]] = {
    "alipay": ALIPAY,
    "wechat": WECHAT,
    "paypal": PAYPAL,
    "boleto": BOLETO,
}
