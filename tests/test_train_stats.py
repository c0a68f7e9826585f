"""The tick collector and the named riders of the gradient all-reduce (sgan.train.stats), and the draws
of sgan.train.latents: a rank's share is its slice of the global draw."""

from __future__ import annotations

import pytest
import torch

from sgan.train.latents import Share, mix_seed, progressive_draws, step_generator, stylegan2_draws
from sgan.train.stats import Riders, TickStats


def test_every_step_terms_average_over_steps_and_sampled_terms_over_their_own_steps():
    st = TickStats()
    for k in range(4):
        st.add("G_loss", torch.tensor(float(k)))
        if k % 2 == 0:
            st.add("D_r1", torch.tensor(4.0))          # lazy, already scaled by its interval 2
            st.add_sample("G_pl", torch.tensor(float(k)))
        st.end_step()
    assert st.totals() == {"G_loss": 6.0, "D_r1": 8.0}
    assert st.record() == {"G_loss": 1.5, "D_r1": 2.0, "G_pl": 1.0}
    assert st.record() == {}                          # a fresh tick


def test_riders_unpack_by_name_whatever_the_order_and_shapes():
    r = Riders(w_mean=torch.arange(3.0), stop=torch.tensor([1.0]), signs=torch.tensor([[2.0, 3.0]]))
    flat = r.flat()
    assert flat.tolist() == [0.0, 1.0, 2.0, 1.0, 2.0, 3.0]
    got = r.unpack(flat * 2)                          # as an all-reduce would change the values
    assert got["w_mean"].tolist() == [0.0, 2.0, 4.0] and got["stop"].tolist() == [2.0]
    assert got["signs"].shape == (1, 2)
    with pytest.raises(AssertionError):
        r.unpack(torch.zeros(5))


@pytest.mark.parametrize("draw", ["progressive", "stylegan2"])
def test_a_rank_draws_its_slice_of_the_global_minibatch(draw):
    def draws(share):
        gen = step_generator(7, 0, 3, 1)
        kw = dict(batch=6, share=share, z_dim=4, num_ws=6, mixing_prob=0.9, device=torch.device("cpu"))
        if draw == "progressive":
            return progressive_draws(gen, cur_layers=4, **kw)
        return stylegan2_draws(gen, **kw)

    one = draws(Share())
    for rank in range(2):
        part = draws(Share(rank, 2))
        assert torch.equal(part["z"], one["z"][rank::2]) and torch.equal(part["z2"], one["z2"][rank::2])
        assert len(part["noise"]) == 3
    assert mix_seed(1, 2, 3) == mix_seed(1, 2, 3) != mix_seed(1, 2, 4)


def test_d_accuracies_are_ratios_of_tick_sums_and_survive_a_snapshot():
    st = TickStats()
    st.add_d_accuracy(torch.tensor([4.0, 8.0, 6.0, 1.0, 8.0]))   # [sum sign, n real, real > 0, fake < 0, n fake]
    st.add_d_accuracy(torch.tensor([0.0, 8.0, 2.0, 7.0, 8.0]))
    saved = st.d_accuracy_state()
    assert saved == {"real_pos": 8.0, "n_real": 16.0, "fake_neg": 8.0, "n_fake": 16.0}
    again = TickStats()
    again.load_d_accuracy_state(saved)                             # a resume in the middle of a tick
    assert again.record({"aug_p": 0.25}) == st.record({"aug_p": 0.25}) == {"aug_p": 0.25, "acc_real": 0.5, "acc_fake": 0.5}
    assert st.record() == {} and st.d_accuracy_state() == {}
