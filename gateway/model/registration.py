"""What a charger may send and be sent for its registration status: the one place for the rule.

OCPP 1.6 section 4.2 (BootNotification): "If the Central System returns the status Pending ...
The Central System MAY send request messages to retrieve information from the Charge Point or
change its configuration ... The Charge Point SHALL NOT send request messages to the Central
System unless it has been instructed by the Central System to do so with a TriggerMessage.req".
Rejected: the charge point sends nothing until its retry interval has passed, and does not answer
the central system. So a guest (Pending by default) gets no transaction: a StartTransaction it
was not asked for is answered with the CALLERROR SecurityError.

"Registration status" is what the charger's last BootNotification was answered: it holds until
the next boot (4.2), so a charger the operator adds, rejects or removes keeps its status until the
gateway asks it to boot again (TriggerMessage), and a running transaction still closes. Before
any boot since the gateway started (a charger that only reconnects), it is the answer the charger
would get now: its device entry, or the guest setting.

Pure: no I/O; the triggered-message window takes its clock from the caller.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Central-system calls allowed while Pending: retrieve information or change the configuration
# (4.2), ask for a message (TriggerMessage, 5.17), and a Reset to apply a configuration.
CENTRAL_ALLOWED_WHEN_PENDING = frozenset({
    "GetConfiguration", "ChangeConfiguration", "TriggerMessage", "DataTransfer",
    "GetLocalListVersion", "SendLocalList", "Reset",
})
# How long after a TriggerMessage the charger's triggered message(s) are let in; a trigger for
# StatusNotification without a connector brings one message per connector (5.17).
TRIGGER_WINDOW_S = 60.0


def registration_now(last_boot_answer: str, configured_answer: str) -> str:
    """The status a charger is under: its last boot's answer, else the answer it would get now."""
    return last_boot_answer or configured_answer


def charger_may_send(registration: str, action: str, triggered: bool = False) -> bool:
    """May a charger with this registration send `action` (a CALL) to the central system now?"""
    if action == "BootNotification" or registration == "Accepted":
        return True
    return triggered  # Pending or Rejected: only what the central system asked for


def central_may_send(registration: str, action: str) -> bool:
    """May the central system send `action` to a charger with this registration now?"""
    if registration == "Accepted":
        return True
    return registration == "Pending" and action in CENTRAL_ALLOWED_WHEN_PENDING


@dataclass
class TriggeredMessages:
    """Messages the central system asked a charger for (TriggerMessage), each open for a while."""

    window_s: float = TRIGGER_WINDOW_S
    _until: dict[str, float] = field(default_factory=dict)

    def expect(self, action: str, now: float) -> None:
        """A TriggerMessage(requestedMessage=action) is being sent at `now`."""
        self._until[action] = now + self.window_s

    def is_expected(self, action: str, now: float) -> bool:
        """Was `action` asked for recently (the charger may send it even while Pending)?"""
        until = self._until.get(action)
        if until is None:
            return False
        if now > until:
            del self._until[action]
            return False
        return True
