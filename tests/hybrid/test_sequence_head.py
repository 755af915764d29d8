"""The single-step LSTM head: written-out gates equal torch's nn.LSTM, and its recurrent weights stay frozen."""

import pytest
import torch

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
