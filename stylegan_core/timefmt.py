"""Durations as NVIDIA's dnnlib writes them, in status lines and in result lines' `total_time_str`."""


def format_time(seconds: float) -> str:
    """'12s', '3m 04s', '2h 05m 09s', '1d 03h 07m'."""
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s // 60 % 60:02d}m {s % 60:02d}s"
    return f"{s // 86400}d {s // 3600 % 24:02d}h {s // 60 % 60:02d}m"
