"""The single-step LSTM head: written-out gates equal torch's nn.LSTM, and its recurrent weights stay frozen."""

import pytest
import torch

from qrec.models.components.optim import AdamLazyRows
from qrec.models.components.sequence_head import SequenceHead


def _heads(**kwargs):
    torch.manual_seed(0)
    fast = SequenceHead(7, 9, emb_dim=4, hidden=6, dropout=0.0, single_step=True, **kwargs)
    general = SequenceHead(7, 9, emb_dim=4, hidden=6, dropout=0.0, **kwargs)
    general.load_state_dict(fast.state_dict())  # same keys: checkpoints load either way
    return fast, general


def test_one_step_equals_nn_lstm_and_its_gradients():
    fast, general = _heads()
    with torch.no_grad():  # non-zero biases and recurrent weights: a wrong gate order or W_hh use would show
        for p in fast.parameters():
            p.uniform_(-0.8, 0.8)
        general.load_state_dict(fast.state_dict())
    values, users, items = torch.rand(32, 1), torch.randint(0, 7, (32,)), torch.randint(0, 9, (32, 1))
    out_fast, out_general = fast(values, users, items), general(values, users, items)
    torch.testing.assert_close(out_fast, out_general, rtol=0, atol=1e-6)
    out_fast.square().sum().backward()
    out_general.square().sum().backward()
    for (name, a), b in zip(fast.named_parameters(), general.parameters(), strict=True):
        if name == "cell.weight_hh_l0":  # multiplies h0 = 0: nn.LSTM's gradient is zero, the fast head has none
            assert a.grad is None and not a.requires_grad and torch.count_nonzero(b.grad) == 0
        else:
            torch.testing.assert_close(a.grad, b.grad, rtol=0, atol=1e-5, msg=name)


def test_single_step_head_refuses_sequences():
    fast, _ = _heads()
    with pytest.raises(ValueError, match="single steps"):
        fast(torch.rand(4, 3), torch.zeros(4, dtype=torch.long), torch.zeros(4, 3, dtype=torch.long))


def _lazy_setup():
    torch.manual_seed(0)
    head = SequenceHead(50, 40, emb_dim=4, hidden=6, dropout=0.0, single_step=True, sparse=True)
    embeddings = [head.user_emb.weight, head.item_emb.weight]
    dense = [p for p in head.parameters() if all(p is not e for e in embeddings)]
    return head, AdamLazyRows([{"params": dense, "lr": 0.01, "weight_decay": 1e-4}], embeddings, lr=0.01)


def _step(head, optimizer, users, values=None):
    optimizer.zero_grad()
    values = torch.full((len(users), 1), 0.5) if values is None else values
    head(values, users, (users % 40).unsqueeze(1)).square().sum().backward()
    optimizer.step()


def test_lazy_adam_moves_only_the_rows_a_batch_touched():
    head, optimizer = _lazy_setup()
    users = torch.tensor([3, 7, 7, 11])
    before = head.user_emb.weight.detach().clone()
    out_before = head.out.weight.detach().clone()
    _step(head, optimizer, users)
    moved = (head.user_emb.weight != before).any(1)
    assert moved.nonzero().flatten().tolist() == [3, 7, 11]  # every other user row is untouched
    assert not torch.equal(head.out.weight, out_before)  # dense parameters take their Adam step


def test_lazy_adam_resumes_exactly_from_its_state_dict():
    head, optimizer = _lazy_setup()
    batches = [(torch.randint(0, 50, (8,)), torch.rand(8, 1)) for _ in range(6)]
    for users, values in batches[:3]:
        _step(head, optimizer, users, values)
    saved_head, saved_optimizer = {k: v.clone() for k, v in head.state_dict().items()}, optimizer.state_dict()
    for users, values in batches[3:]:
        _step(head, optimizer, users, values)
    resumed, resumed_optimizer = _lazy_setup()
    resumed.load_state_dict(saved_head)
    resumed_optimizer.load_state_dict(saved_optimizer)
    for users, values in batches[3:]:
        _step(resumed, resumed_optimizer, users, values)
    for name, value in head.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[name], value, rtol=0, atol=0, msg=name)
