"""A preallocated ring buffer of multichannel samples and their timestamps."""

from __future__ import annotations

import numpy as np

from bci._check import ensure_int


class RingBuffer:
    """Fixed-capacity buffer keeping the latest samples and timestamps.

    Not thread-safe by itself: :class:`~bci.acquisition.EEGStream` guards it with a lock.

    Parameters
    ----------
    n_channels : int
        Number of channels.
    capacity : int
        Number of samples kept.
    dtype : numpy dtype, default=np.float64
        Sample type.

    Attributes
    ----------
    n_written : int
        Samples pushed since creation or the last :meth:`clear`.
    """

    def __init__(self, n_channels: int, capacity: int, dtype: type = np.float64) -> None:
        n_channels = ensure_int(n_channels, "n_channels")
        capacity = ensure_int(capacity, "capacity")
        if n_channels < 1 or capacity < 1:
            raise ValueError(
                f"'n_channels' and 'capacity' must be >= 1, got {n_channels} and {capacity}."
            )
        self._data = np.zeros((capacity, n_channels), dtype=dtype)
        self._ts = np.zeros(capacity, dtype=np.float64)
        self._head = 0  # next write position
        self.n_written = 0

    @property
    def capacity(self) -> int:
        """Number of samples the buffer keeps."""
        return self._data.shape[0]

    @property
    def n_channels(self) -> int:
        """Number of channels."""
        return self._data.shape[1]

    def __len__(self) -> int:
        return min(self.n_written, self.capacity)

    def clear(self) -> None:
        """Forget every sample (the memory stays allocated)."""
        self._head = 0
        self.n_written = 0

    def push(self, data: np.ndarray, timestamps: np.ndarray) -> None:
        """Append samples.

        Parameters
        ----------
        data : ndarray, shape (n_samples, n_channels)
            New samples, oldest first.
        timestamps : ndarray, shape (n_samples,)
            Their timestamps.
        """
        data = np.asarray(data)
        timestamps = np.asarray(timestamps, dtype=np.float64)
        if data.ndim != 2 or data.shape[1] != self.n_channels:
            raise ValueError(
                f"'data' must have shape (n_samples, {self.n_channels}), got {data.shape}."
            )
        n = data.shape[0]
        if timestamps.shape != (n,):
            raise ValueError(f"'timestamps' must have shape ({n},), got {timestamps.shape}.")
        if n == 0:
            return
        cap = self.capacity
        if n >= cap:  # only the newest `cap` samples survive
            self._data[:] = data[n - cap:]
            self._ts[:] = timestamps[n - cap:]
            self._head = 0
        else:
            first = min(n, cap - self._head)
            self._data[self._head:self._head + first] = data[:first]
            self._ts[self._head:self._head + first] = timestamps[:first]
            rest = n - first
            if rest:
                self._data[:rest] = data[first:]
                self._ts[:rest] = timestamps[first:]
            self._head = (self._head + n) % cap
        self.n_written += n

    def latest(self, n_samples: int) -> tuple[np.ndarray, np.ndarray]:
        """Copy the ``n_samples`` newest samples.

        Returns
        -------
        data : ndarray, shape (n_channels, n_samples)
            Oldest first.
        timestamps : ndarray, shape (n_samples,)
            Their timestamps.

        Raises
        ------
        ValueError
            When fewer than ``n_samples`` samples are held.
        """
        n = ensure_int(n_samples, "n_samples")
        if n < 0 or n > len(self):
            raise ValueError(
                f"'n_samples' must be in [0, {len(self)}] (samples held), got {n_samples}."
            )
        start = (self._head - n) % self.capacity
        if start + n <= self.capacity:
            idx = slice(start, start + n)
            return self._data[idx].T.copy(), self._ts[idx].copy()
        idx = np.r_[start:self.capacity, 0:(start + n) % self.capacity]
        return self._data[idx].T.copy(), self._ts[idx]
