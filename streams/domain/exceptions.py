"""The domain's one error family."""


class DomainError(Exception):
    """Base of every error the domain raises on purpose."""


class PolicyError(DomainError):
    """A policy file is malformed; the message names the file, the path and the problem."""


class NoPolicy(DomainError):
    """No policy covers a region and year: the person becomes a review case, never a guess."""

    def __init__(self, region_code: str, year: int | None, detail: str = "") -> None:
        what = f"year {year}" if year is not None else "any year"
        super().__init__(f"no policy for region {region_code}, {what}{': ' + detail if detail else ''}")
        self.region_code = region_code
        self.year = year
