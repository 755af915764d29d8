"""Quantum circuits (PennyLane qfuncs), the TorchLayer factory and a fast exact torch simulator.

Light on purpose: PennyLane is imported only when a qfunc or a TorchLayer is built. Import what
you need from the submodules: ``circuits``, ``estimators``, ``lightcone``, ``simulator``, ``layers``.
"""
