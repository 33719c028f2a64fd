"""The online decoding loop and the decision policy."""

from bci.online.decision import Decision
from bci.online.decisions_stream import DecisionsInlet, DecisionsOutlet
from bci.online.loop import OnlineLoop
from bci.online.offline_source import RecordingSource
from bci.online.policy import DecisionPolicy, PolicyResult
from bci.online.pseudo_online import replay, replay_lsl
from bci.online.session_log import SessionLog, read_session_log

__all__ = [
    "Decision",
    "DecisionPolicy",
    "DecisionsInlet",
    "DecisionsOutlet",
    "OnlineLoop",
    "PolicyResult",
    "RecordingSource",
    "SessionLog",
    "read_session_log",
    "replay",
    "replay_lsl",
]
