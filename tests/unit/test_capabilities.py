"""ChargerCapabilities and the quirk profiles (OCPP 1.6 section 9 configuration keys; manuals in
shared/seeds: 000 Smappee, 001 AC wallbox, 003 zappi, 004 EVlink)."""

from dataclasses import replace

import pytest

from gateway.chargers.capabilities import DEFAULTS, ChargerCapabilities
from gateway.chargers.configuration import batch_size
from gateway.chargers.quirks import QuirkSet, bundled_quirks, load_quirks, parse_quirk
from gateway.errors import QuirkError

# Configuration as the AC wallbox manual (001, section 3.2.1) lists its defaults, typos included.
AC_WALLBOX_KEYS = {
    "SupportedFeatureProfiles": "Core, FirmwareManagement, LocalAuthicationListManagement, SmartCharging, RemoteTrigger",
    "ChargeProfileMaxStackLevel": "1",
    "ChargingScheduleAllowedChargingRateUnit": "Current,Power",
    "ChargingScheduleMaxPeriods": "14",
    "MaxChargingProfilesInstalled": "1",
    "GetConfigurationMaxKeys": "10",
    "SendLocalListMaxLength": "5",
    "LocalAuthListMaxLength": "20",
    "NumberOfConnectors": "1",
    "MeterValuesSampledData": "Energy.Active.Import.Register,Current.Import,Power.Active.Import,Current.Offered,Voltage",
    "ConnectorPhaseRotation": "False",
    "TransactionMessageRetryInterval": "10S",
}

# EVlink read-only values from its guide (004, section 8.1).
EVLINK_KEYS = {
    "SupportedFeatureProfiles": "Core,Firmware Management, Reservation,SmartCharging",
    "ChargeProfileMaxStackLevel": "999",
    "ChargingScheduleAllowedChargingRateUnit": "Current",
    "GetConfigurationMaxKeys": "200",
    "MaxChargingProfilesInstalled": "99",
    "NumberOfConnectors": "2",
    "ConnectorPhaseRotation": "0.RST, 1.RST, 2.RTS",
}


def caps(keys=None, vendor="Acme", model="Box", firmware=None, quirks=None):
    return ChargerCapabilities.from_configuration(keys or {}, vendor, model, firmware, quirks=quirks)


# --- missing and odd keys ---------------------------------------------------------------------

def test_charger_that_reports_no_keys_gets_safe_defaults_and_they_are_listed():
    c = caps()
    assert c.allowed_rate_units == ("A",)
    assert (c.max_stack_level, c.max_periods, c.get_configuration_max_keys) == (0, 1, 1)
    assert (c.min_current_a, c.max_current_a) == (6.0, 32.0)
    assert c.accepted_purposes == ("ChargePointMaxProfile", "TxDefaultProfile", "TxProfile")
    assert "ChargeProfileMaxStackLevel" in c.defaults_used
    assert set(c.defaults_used) <= set(DEFAULTS)


def test_missing_supported_feature_profiles_is_not_fatal_smart_charging_is_tried():
    c = caps({"ChargeProfileMaxStackLevel": "3"})
    assert c.feature_profiles is None
    assert c.supports_profile("SmartCharging")
    assert c.supports_action("SetChargingProfile")


def test_unreadable_value_falls_back_to_the_default():
    c = caps({"ChargingScheduleMaxPeriods": "many", "ChargingScheduleAllowedChargingRateUnit": "Volts"})
    assert c.max_periods == 1
    assert c.allowed_rate_units == ("A",)
    assert "ChargingScheduleMaxPeriods" in c.defaults_used


def test_key_names_are_matched_in_any_case_and_empty_values_count_as_missing():
    c = caps({"chargeprofilemaxstacklevel": "4", "GetConfigurationMaxKeys": ""})
    assert c.max_stack_level == 4
    assert c.get_configuration_max_keys == 1


def test_ac_wallbox_keys_are_read_despite_typos_and_unit_suffixes():
    c = caps(AC_WALLBOX_KEYS)
    assert c.supports_profile("LocalAuthListManagement")
    assert not c.supports_profile("Reservation")
    assert not c.supports_action("ReserveNow")
    assert c.allowed_rate_units == ("A", "W")
    assert (c.max_stack_level, c.max_periods, c.get_configuration_max_keys) == (1, 14, 10)
    assert (c.send_local_list_max_length, c.local_auth_list_max_length) == (5, 20)
    assert c.has_measurand("Current.Offered")
    assert c.phases_hint(1) is None  # "False" says nothing about the wiring


def test_phase_rotation_tells_how_many_phases_a_connector_has():
    c = caps(EVLINK_KEYS)
    assert c.phases_hint(1) == 3
    assert c.phases_hint(2) == 3
    assert caps({"ConnectorPhaseRotation": "NotApplicable"}).phases_hint(1) == 1
    assert caps({"ConnectorPhaseRotation": "Unknown"}).phases_hint(1) is None


def test_measurand_with_a_phase_suffix_counts_as_sampled():
    c = caps({"MeterValuesSampledData": "Energy.Active.Import.Register, Current.Import.L1"})
    assert c.has_measurand("Current.Import")
    assert not c.has_measurand("Current.Offered")


# --- the four chargers --------------------------------------------------------------------------

def test_zappi_takes_only_tx_profiles_stack_15_and_26_writes_an_hour():
    """zappi manual (003), "Set Charging Profile"."""
    c = caps(vendor="Myenergi", model="Zappi", firmware="5540")
    assert c.quirk_name == "myenergi-zappi"
    assert not c.accepts_purpose("ChargePointMaxProfile")
    assert c.accepts_purpose("TxDefaultProfile") and c.accepts_purpose("TxProfile")
    assert c.max_stack_level == 15
    assert c.profile_writes_per_hour == 26
    assert c.min_current_a == 6.0
    assert c.recommended_configuration == {"CommercialMode": "true"}


def test_quirk_narrows_reported_limits_but_never_widens_them():
    assert caps({"ChargeProfileMaxStackLevel": "999"}, "Myenergi", "Zappi").max_stack_level == 15
    assert caps({"ChargeProfileMaxStackLevel": "3"}, "Myenergi", "Zappi").max_stack_level == 3


def test_evlink_gets_amperes_only_and_leaves_out_min_rate_and_phases():
    """EVlink guide (004), section 4.1."""
    c = caps({**EVLINK_KEYS, "ChargingScheduleAllowedChargingRateUnit": "Current,Power"},
             "Schneider Electric", "EVlink Smart Wallbox")
    assert c.quirk_name == "schneider-evlink"
    assert c.allowed_rate_units == ("A",)
    assert c.rejected_schedule_fields == {"minChargingRate", "numberPhases"}
    assert c.max_stack_level == 999


def test_evlink_composite_schedule_only_for_a_real_connector():
    c = caps(EVLINK_KEYS, "Schneider Electric", "EVF2S22P22")
    assert not c.can_get_composite_schedule(0)
    assert c.can_get_composite_schedule(1)


def test_evlink_long_boot_serials_relax_only_the_boot_notification_schema():
    c = caps(EVLINK_KEYS, "Schneider Electric", "EVlink City")
    assert c.relaxed_schema_actions == {"BootNotification"}
    assert c.recommended_configuration["truncateBootNotificationsSerialNumbers"] == "true"
    assert c.supports_action("ReserveNow")
    assert not c.supports_action("SendLocalList")


def test_evlink_trigger_message_counts_although_its_key_omits_remote_trigger():
    """EVlink guide (004): 3.1 TriggerMessage from R6; 8.1 SupportedFeatureProfiles lacks it."""
    c = caps(EVLINK_KEYS, "Schneider Electric", "EVlink Parking")
    assert c.feature_profiles == {"Core", "FirmwareManagement", "Reservation", "SmartCharging",
                                  "RemoteTrigger"}
    assert c.supports_action("TriggerMessage") and c.supports_action("GetDiagnostics")


def test_a_quirk_adds_a_documented_profile_only_to_a_reported_list():
    """Unknown SupportedFeatureProfiles stays unknown (everything is tried), not a short list."""
    c = caps({}, "Schneider Electric", "EVlink Parking")
    assert c.feature_profiles is None


def test_zappi_is_never_asked_for_what_its_manual_does_not_list():
    """zappi manual (003), "The following message types are supported"."""
    c = caps({}, "Myenergi", "Zappi")
    for action in ("GetDiagnostics", "SendLocalList", "ReserveNow", "ClearCache", "DataTransfer"):
        assert not c.supports_action(action), action
    assert c.supports_action("GetCompositeSchedule") and c.supports_action("UpdateFirmware")


def test_smappee_is_never_asked_for_reservations_local_lists_composite_schedules_or_firmware():
    """Smappee manual (000), section 6."""
    c = caps({"SupportedFeatureProfiles": "Core,SmartCharging,Reservation,FirmwareManagement"},
             "Smappee", "EVWB-332-BR-E-W")
    for action in ("ReserveNow", "CancelReservation", "SendLocalList", "GetLocalListVersion",
                   "GetCompositeSchedule", "UpdateFirmware"):
        assert not c.supports_action(action), action
    assert c.supports_action("SetChargingProfile")
    assert c.supports_action("TriggerMessage") is False  # RemoteTrigger not reported


def test_ac_wallbox_assigned_by_name_chunks_get_configuration_before_its_keys_are_known():
    """AC wallbox manual (001), 3.2.1: GetConfigurationMaxKeys 10, SendLocalList 5 tags."""
    quirk = bundled_quirks().by_name("ac-wallbox")
    c = caps({}, "", "", quirks=quirk)
    assert (c.get_configuration_max_keys, c.send_local_list_max_length) == (10, 5)
    assert (c.max_stack_level, c.max_periods) == (1, 14)


def test_unknown_charger_gets_no_quirk():
    assert caps(vendor="Acme", model="Zappi-clone").quirk_name is None


# --- the quirk loader ----------------------------------------------------------------------------

def test_every_bundled_quirk_cites_its_manual_and_the_ac_wallbox_is_never_matched_by_boot():
    quirks = bundled_quirks()
    assert {q.name for q in quirks} == {"myenergi-zappi", "schneider-evlink", "ac-wallbox", "smappee"}
    assert all(q.manual for q in quirks)
    assert not quirks.by_name("ac-wallbox").matchable


def test_firmware_specific_quirk_wins_over_the_general_one():
    general = parse_quirk({"name": "gen", "match": {"vendor": "Acme"}})
    old = parse_quirk({"name": "old", "match": {"vendor": "Acme", "firmware": r"^1\."},
                       "smart_charging": {"max_stack_level": 0}})
    quirks = QuirkSet([general, old])
    assert quirks.match("Acme", "X", "1.2").name == "old"
    assert quirks.match("Acme", "X", "2.0").name == "gen"
    assert quirks.match("Acme", "X", None).name == "gen"


@pytest.mark.parametrize("text", [
    'name = "x"\n[smart_charging]\nmax_stack_levl = 1\n',
    'name = "x"\n[smart_charging]\nmax_stack_level = "1"\n',
    'name = "x"\n[smart_charging]\nmin_current_a = true\n',
    'name = "x"\n[smart_charging]\naccepted_purposes = ["TxProfil"]\n',
    'name = "x"\n[match]\nvendor = "("\n',
    '[match]\nvendor = "a"\n',
    'name = "x"\nsmart_charging = 3\n',
    'name = "x"\n[smart',
])
def test_a_quirk_file_with_a_typo_is_refused_not_silently_ignored(tmp_path, text):
    (tmp_path / "bad.toml").write_text(text)
    with pytest.raises(QuirkError):
        load_quirks(tmp_path)


def test_two_quirks_with_one_name_are_refused():
    q = parse_quirk({"name": "same"})
    with pytest.raises(QuirkError):
        QuirkSet([q, replace(q)])


def test_a_batched_configuration_read_asks_as_many_keys_as_the_charger_or_its_quirk_allows():
    """The quirk's GetConfigurationMaxKeys sizes the batches while the charger has not said its own."""
    four = parse_quirk({"name": "four", "protocol": {"get_configuration_max_keys": 4}})
    assert batch_size(None, caps({}, quirks=four)) == 4
    assert batch_size(None, caps({"GetConfigurationMaxKeys": "3"}, quirks=four)) == 3
    assert batch_size(7, caps({}, quirks=four)) == 7  # what the charger reported in this read
    assert batch_size(None, caps({})) == 10  # nothing known: the AC wallbox manual's default


def test_capabilities_follow_the_charger_whenever_its_configuration_or_quirk_changes():
    """Capabilities are kept per configuration (asked every smart-charging pass); a changed key,
    boot or assigned quirk gives the new answer at once (OCPP 1.6 9.4 ChargeProfileMaxStackLevel)."""
    from gateway.chargers.capabilities import capabilities_of
    from gateway.model.station import BootInfo, ConfigKey, Registry

    registry = Registry()
    station = registry.ensure("CP1")
    registry.set_config(station, ConfigKey("ChargeProfileMaxStackLevel", "3", readonly=True))
    assert capabilities_of(station).max_stack_level == 3
    assert capabilities_of(station) is capabilities_of(station)
    registry.set_config(station, ConfigKey("ChargeProfileMaxStackLevel", "5", readonly=True))
    assert capabilities_of(station).max_stack_level == 5
    station.boot = BootInfo(vendor="Schneider Electric", model="EVlink")
    assert capabilities_of(station).vendor == "Schneider Electric"
    station.quirk_name = "ac-wallbox"
    assert capabilities_of(station).quirk_name == "ac-wallbox"
