"""pg_upgrade under the crash model (UPG_01 with ROT_04..ROT_06): the new cluster's trace is
rotation's swap, and after any crash of the copy the new cluster opens its own original keys or
the old cluster's, never neither; a copy that removes the new keys first is caught."""

from __future__ import annotations

import pytest
from pgkms.fs import FileSystem, join, remove_tree
from pgkms.kdf import derive_kek
from pgkms.keydir import read_key_set, write_key_set
from pgkms.layout import KEY_DIR, KEY_TMP_DIR
from pgkms.randomness import RandomSource
from pgkms.recovery import recover
from pgkms.secret import Secret
from pgkms_conformance.crash.explorer import (
    OLD_ROOT,
    Protocol,
    TwoClusters,
    UpgradeExplorer,
    UpgradeScenario,
    upgrade_protocol,
)
from pgkms_conformance.crash.machine import SPEC_ROTATION, SPEC_UPGRADE
from pgkms_conformance.crash.simfs import SimFileSystem

pytestmark = pytest.mark.req("UPG_01", "CRASH_07", "ROT_04", "ROT_05", "ROT_06")


def test_the_upgrade_issues_rotations_swap_in_the_new_cluster() -> None:
    explorer = UpgradeExplorer()
    trace = explorer.rotation_trace()
    assert len(trace) == 17
    assert explorer.phases(trace)[-1] == "rotated"
    assert [(s.kind, s.role) for s in SPEC_UPGRADE.steps] == [
        (s.kind, s.role) for s in SPEC_ROTATION.steps
    ]
    assert all("UPG_01" in s.reqs for s in SPEC_UPGRADE.steps)


@pytest.mark.parametrize("ordering", ["subset", "prefix"])
def test_every_crash_state_opens_one_of_the_two_key_sets(ordering: str) -> None:
    explorer = UpgradeExplorer(ordering=ordering)  # type: ignore[arg-type]
    report = explorer.run()
    assert report.violations == []
    scenario = explorer.upgrade
    assert scenario.keys != scenario.old_keys
    opened = set()
    for image in report.states:
        outcome, _ = explorer.startup_outcome(image, scenario.old)
        assert outcome.keys in (scenario.keys, scenario.old_keys)
        opened.add(outcome.keys)
    assert opened == {scenario.keys, scenario.old_keys}  # both ends of the copy are reached


def _removing_first(scenario: UpgradeScenario) -> Protocol:
    """The upgrade with the new cluster's keys removed before the copy is written."""
    old_image = scenario.old_cluster_image()
    good = upgrade_protocol(scenario)

    def run(fs: FileSystem, d: str, passphrase: Secret, _n: Secret, _r: RandomSource) -> object:
        both = TwoClusters(SimFileSystem(old_image, OLD_ROOT), fs)
        kek = derive_kek(passphrase)
        recover(both, d, kek)
        records = read_key_set(both, join(OLD_ROOT, KEY_DIR))
        remove_tree(both, join(d, KEY_DIR))
        both.fsync_dir(d)
        write_key_set(both, join(d, KEY_TMP_DIR), records)
        both.fsync_dir(d)
        both.rename(join(d, KEY_TMP_DIR), join(d, KEY_DIR))
        both.fsync_dir(d)
        return None

    return Protocol("upgrade-removing-first", good.procedure, run, good.startup, good.decide)


def test_removing_the_new_keys_first_is_caught() -> None:
    scenario = UpgradeScenario()
    explorer = UpgradeExplorer(scenario)
    explorer.protocol = _removing_first(scenario)
    explorer.phases = lambda trace: ["?"] * len(trace)  # type: ignore[method-assign]
    counts = explorer.run().counts()
    assert counts["I1"] > 0
