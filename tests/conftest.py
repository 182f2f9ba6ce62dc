"""Test-session settings shared by every folder.

Property tests (hypothesis) explore new examples on every local run, which is how they find
bugs; CI must not fail on an example nobody has seen, so ``.ci/run`` selects the ``ci``
profile (``HETEROSCALE_HYPOTHESIS_PROFILE=ci``): the same examples every run, derived from each
test, as hypothesis recommends for continuous integration.
"""

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True)
settings.load_profile(os.environ.get("HETEROSCALE_HYPOTHESIS_PROFILE", "default"))
