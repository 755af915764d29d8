"""Shared fixtures for the quantum tests: skip the folder cleanly when PennyLane is absent."""

import pytest

pytest.importorskip("pennylane")
