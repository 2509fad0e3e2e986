"""fraud-monitor's domain: event contract, per-entity state, River models, alert policy.

This package is pure Python and never imports Faust; ``streams`` adapts it to Kafka
and ``monitor.tools.replay`` drives the very same code from a file. The hot path may run
compiled (see :mod:`monitor.runtime.native`); it is the same code either way.
"""

from monitor.runtime.native import install_guard

__version__ = "0.1.0"

install_guard()
