"""Frozen base predictions computed once: the same predictions as computing them, for any pair."""

import pytest
import torch

from qrec.data import RatingsDataModule, make_synthetic_ratings
from qrec.models.components.frozen import FrozenPredictions, bypassed, split_pairs
from qrec.models.ensemble import EnsembleModule
from qrec.models.hybrid import QuantumErrorLSTMModule

VARNET_BASE = {"_target_": "qrec.models.varnet.VarNetModule", "k": 2, "n_layers": 1, "readout": "all_z"}


def datamodule() -> RatingsDataModule:
    dm = RatingsDataModule(lambda: make_synthetic_ratings(seed=1), batch_size=32, with_timestamps=True)
    dm.setup()
    return dm


@pytest.mark.parametrize("direct", [True, False])  # slot table / sorted keys
def test_table_returns_stored_values_and_computes_the_rest(monkeypatch, direct):
    if not direct:
        monkeypatch.setattr("qrec.models.components.frozen.DIRECT_MAX", 0)
    calls = []

    def predict(users, items):
        calls.append(len(users))
        return (users * 10 + items).float()

    table = FrozenPredictions(predict, torch.tensor([3, 1, 3, 0]), torch.tensor([2, 4, 2, 0]), n_items=5, chunk=2)
    assert calls == [2, 1]  # three distinct pairs, in chunks of two
    users, items = torch.tensor([1, 3, 0, 2, 3]), torch.tensor([4, 2, 0, 2, 4])
    values, found = table.lookup(users, items)
    assert found.tolist() == [True, True, True, False, False]
    assert (table.slots is not None) == direct
    # Pairs past every stored key, a negative or out-of-range item: never found, never an index error.
    assert not table.lookup(torch.tensor([9, 0, 1, -1]), torch.tensor([0, 7, -1, 2]))[1].any()
    calls.clear()
    assert table(users, items, predict).tolist() == [14.0, 32.0, 0.0, 22.0, 34.0]
    assert calls == [2]  # only the two pairs the table lacks
    with bypassed(table):
        calls.clear()
        assert table(users, items, predict).tolist() == [14.0, 32.0, 0.0, 22.0, 34.0]
        assert calls == [5]
    assert table.enabled


@pytest.mark.parametrize("joint", [False, True])
def test_staged_hybrid_predicts_as_if_it_computed_its_base(tmp_path, joint):
    dm = datamodule()
    model = QuantumErrorLSTMModule(base=VARNET_BASE, joint=joint, base_epochs=1, cache_dir=str(tmp_path))
    model.attach(dm)
    model.eval()  # after build: the head's dropout must be off
    assert any(isinstance(m, FrozenPredictions) for m in model.modules()) != joint  # e2e keeps computing
    users = torch.cat([dm.test.users, torch.tensor([0, 1])])
    items = torch.cat([dm.test.items, torch.tensor([dm.n_items - 1, dm.n_items - 2])])  # maybe unseen pairs
    with torch.no_grad():
        looked_up = model.predict_clipped(users, items)
        with bypassed(model):
            computed = model.predict_clipped(users, items)
    torch.testing.assert_close(looked_up, computed, rtol=0, atol=1e-6)
    assert "frozen." not in " ".join(model.state_dict())  # rebuilt from data, never checkpointed


def test_ensemble_members_are_looked_up_and_weights_unchanged(tmp_path, monkeypatch):
    monkeypatch.setenv("QREC_DATA_DIR", str(tmp_path))
    dm = datamodule()
    model = EnsembleModule(["bias", "svd"], cache_dir=str(tmp_path))
    model.attach(dm)
    users, items = split_pairs(dm.val)
    with torch.no_grad():
        direct = model.member_predictions(users, items) @ model.weights
        torch.testing.assert_close(model.predict(users, items), direct, rtol=0, atol=1e-6)
