"""Progress tracking, pure: body-site vocabulary, alignment, measurement, colour.

Nothing here does I/O beyond the bytes or arrays a caller hands in.
"""
