import pytest

from bench.errors import UnknownNameError
from bench.registry import Registry


def make() -> Registry[int]:
    reg: Registry[int] = Registry("thing")
    reg.register("O:SOFTMAX:CE", 1, aliases=("softmax_ce",))
    reg.register("hinge", 2)
    return reg


def test_lookup_by_name_alias_and_any_case():
    reg = make()
    assert reg.get("O:SOFTMAX:CE") == 1
    assert reg.get("softmax_ce") == 1
    assert reg.get("o:softmax:ce") == 1
    assert reg.canonical("SOFTMAX_CE") == "O:SOFTMAX:CE"


def test_unknown_name_lists_valid_names_and_suggests_near_miss():
    with pytest.raises(UnknownNameError) as info:
        make().get("O:SOFTMAX:XE")
    message = str(info.value)
    assert "'O:SOFTMAX:XE'" in message
    assert "O:SOFTMAX:CE, hinge" in message
    assert "Did you mean 'O:SOFTMAX:CE'?" in message


def test_unknown_name_without_near_miss_has_no_suggestion():
    with pytest.raises(UnknownNameError) as info:
        make().get("zzzzzz")
    assert "Did you mean" not in str(info.value)


def test_duplicate_names_are_refused():
    reg = make()
    with pytest.raises(ValueError, match="already registered"):
        reg.register("Hinge", 3)


def test_values_and_items_follow_registration_order_without_repeating_aliases():
    reg = make()
    assert reg.values() == [1, 2]
    assert reg.items() == [("O:SOFTMAX:CE", 1), ("hinge", 2)]
    assert list(reg) == reg.names() == ["O:SOFTMAX:CE", "hinge"]


def test_a_refused_registration_writes_nothing_and_the_same_entry_twice_is_a_no_op():
    from bench.errors import ConfigError
    from bench.registry import Registry

    reg = Registry[str]("model")
    reg.register("ce", "cross-entropy", aliases=("cross_entropy",))
    with pytest.raises(ConfigError, match="model name 'CROSS_ENTROPY' is already registered \\(as 'ce'\\)"):
        reg.register("focal2", "focal", aliases=("focal2_loss", "CROSS_ENTROPY"))
    assert "focal2" not in reg and "focal2_loss" not in reg and reg.names() == ["ce"]
    assert reg.register("ce", "cross-entropy", aliases=("cross_entropy",)) == "cross-entropy"  # loaded twice
    with pytest.raises(ConfigError, match="already registered"):
        reg.register("ce", "another loss")
