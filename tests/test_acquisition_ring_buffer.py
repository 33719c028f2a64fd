"""RingBuffer: wraparound, oversize pushes, copies; property-based against a plain list."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bci.acquisition import RingBuffer


def test_wraparound_returns_latest_in_order():
    rb = RingBuffer(2, 5)
    for k in range(3):
        x = np.arange(3 * k, 3 * k + 3, dtype=float)
        rb.push(np.c_[x, -x], x + 0.5)
    assert len(rb) == 5 and rb.n_written == 9
    data, ts = rb.latest(5)
    np.testing.assert_array_equal(data, [[4, 5, 6, 7, 8], [-4, -5, -6, -7, -8]])
    np.testing.assert_array_equal(ts, np.arange(4, 9) + 0.5)
    data, ts = rb.latest(2)
    np.testing.assert_array_equal(data[0], [7, 8])


def test_latest_is_a_copy_and_push_larger_than_capacity():
    rb = RingBuffer(1, 4)
    rb.push(np.arange(10.0)[:, None], np.arange(10.0))
    data, _ = rb.latest(4)
    np.testing.assert_array_equal(data[0], [6, 7, 8, 9])
    data[0, 0] = -1
    assert rb.latest(4)[0][0, 0] == 6
    rb.clear()
    assert len(rb) == 0
    with pytest.raises(ValueError, match="samples held"):
        rb.latest(1)


def test_bad_arguments():
    with pytest.raises(ValueError, match=">= 1"):
        RingBuffer(0, 4)
    with pytest.raises(TypeError, match="'capacity' must be an int"):
        RingBuffer(2, 4.5)
    rb = RingBuffer(2, 4)
    with pytest.raises(ValueError, match="shape \\(n_samples, 2\\)"):
        rb.push(np.zeros((3, 3)), np.zeros(3))
    with pytest.raises(ValueError, match="'timestamps' must have shape"):
        rb.push(np.zeros((3, 2)), np.zeros(2))


@settings(max_examples=300, deadline=None)
@given(
    capacity=st.integers(1, 40),
    sizes=st.lists(st.integers(0, 60), min_size=1, max_size=25),
    data=st.data(),
)
def test_matches_reference(capacity, sizes, data):
    rb = RingBuffer(3, capacity)
    ref = np.zeros((0, 3))
    k = 0
    for n in sizes:
        x = np.arange(k, k + n, dtype=float)
        chunk = np.c_[x, 2 * x, -x]
        rb.push(chunk, x)
        ref = np.vstack([ref, chunk])
        k += n
    held = min(k, capacity)
    assert len(rb) == held
    m = data.draw(st.integers(0, held))
    got, ts = rb.latest(m)
    want = ref[len(ref) - m:]
    np.testing.assert_array_equal(got, want.T)
    np.testing.assert_array_equal(ts, want[:, 0])
