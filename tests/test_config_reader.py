"""Reading configuration files: hostile XML refused, every refusal located and explained.

How fast the hostile files are refused is measured by benchmarks/config_hostile.py (speed is
never asserted in tests); here each one must be refused with a clear reason.
"""

from __future__ import annotations

import codecs

import pytest
from config_setup import CONFIGS, config, fields

from audit2sysmon.errors import ConfigError
from audit2sysmon.sysmon.config import MAX_CONFIG_BYTES, load_config

VALID = (
    b'<Sysmon schemaversion="4.90"><EventFiltering><ProcessCreate onmatch="include">'
    b'<Image condition="end with">/wget</Image></ProcessCreate></EventFiltering></Sysmon>'
)


def refused(data: bytes | str) -> ConfigError:
    with pytest.raises(ConfigError) as error:
        load_config(data.encode("utf-8") if isinstance(data, str) else data, path="hostile.xml")
    assert error.value.path == "hostile.xml"
    return error.value


# Hostile input.

BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + "".join(f' <!ENTITY lol{i} "{(f"&lol{i - 1};" if i > 1 else "&lol;") * 10}">\n' for i in range(1, 10))
    + ']>\n<Sysmon schemaversion="4.90"><EventFiltering><ProcessCreate onmatch="include">'
    "<Image>&lol9;</Image></ProcessCreate></EventFiltering></Sysmon>"
)
EXTERNAL_ENTITY = (
    '<?xml version="1.0"?>\n<!DOCTYPE Sysmon [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
    '<Sysmon schemaversion="4.90"><EventFiltering><ProcessCreate onmatch="include">'
    "<Image>&xxe;</Image></ProcessCreate></EventFiltering></Sysmon>"
)


@pytest.mark.parametrize("text", [BILLION_LAUGHS, EXTERNAL_ENTITY], ids=["billion-laughs", "external-entity"])
def test_a_doctype_is_refused_before_parsing(text):
    error = refused(text)
    assert "DOCTYPE is not allowed" in error.reason
    assert (error.line, error.column) == (2, 1)


def test_an_undeclared_entity_is_not_well_formed():
    error = refused('<Sysmon schemaversion="4.90">\n  &xxe;</Sysmon>')
    assert "Entity 'xxe' not defined" in error.reason
    assert error.line == 2


def test_a_file_over_the_size_cap_is_not_read(tmp_path):
    huge = tmp_path / "huge.xml"
    with open(huge, "wb") as file:  # 100 MB, sparse: only the cap plus one byte is read
        file.write(b"<Sysmon>")
        file.truncate(100 * 1024 * 1024)
    with pytest.raises(ConfigError, match="larger than 4 MiB") as error:
        load_config(huge)
    assert error.value.path == str(huge)


def test_bytes_over_the_size_cap_are_refused():
    error = refused(b" " * (MAX_CONFIG_BYTES + 1))
    assert "larger than 4 MiB" in error.reason


def test_deep_nesting_is_refused_with_its_place():
    error = refused('<Sysmon schemaversion="4.90">' + "<a>" * 100_000 + "</a>" * 100_000 + "</Sysmon>")
    assert "Excessive depth" in error.reason
    assert error.line == 1 and error.column is not None


def test_invalid_utf8_is_refused_with_its_place():
    error = refused(VALID.replace(b"/wget", b"/w\xffget").replace(b"<EventFiltering>", b"\n\n<EventFiltering>"))
    assert "invalid utf-8" in error.reason and "0xff" in error.reason
    assert error.line == 3
    assert error.column == VALID.index(b"/wget") - VALID.index(b"<EventFiltering>") + 3


def test_not_well_formed_xml_is_refused_with_its_place():
    error = refused('<Sysmon schemaversion="4.90">\n<EventFiltering></Event></Sysmon>')
    assert "not well-formed XML" in error.reason and "mismatch" in error.reason
    assert error.line == 2


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the configuration") as error:
        load_config(tmp_path / "absent.xml")
    assert error.value.path == str(tmp_path / "absent.xml")
    with pytest.raises(ConfigError, match="cannot read the configuration"):
        load_config(tmp_path)  # a directory


# Encodings Sysmon reads.


@pytest.mark.parametrize(
    "data",
    [
        codecs.BOM_UTF8 + VALID,
        codecs.BOM_UTF16_LE + VALID.decode().encode("utf-16-le"),
        VALID.decode().encode("utf-16-le"),  # no BOM: Sysmon sees the NUL second byte
        codecs.BOM_UTF16_LE + ('<?xml version="1.0" encoding="UTF-16"?>\r\n' + VALID.decode()).encode("utf-16-le"),
        b'<?xml version="1.0" encoding="ISO-8859-1"?>\n' + VALID.replace(b"/wget", b"/wg\xe9t"),
    ],
    ids=["utf-8-bom", "utf-16le-bom", "utf-16le", "utf-16le-declared", "latin-1"],
)
def test_encodings(data):
    cfg = load_config(data, path="enc.xml")
    image = "/usr/bin/wgét" if b"ISO-8859-1" in data else "/usr/bin/wget"
    assert cfg.decide(1, fields(1, Image=image)) == "-"


def test_utf16_big_endian_and_unknown_encodings_are_refused():
    assert "big-endian" in refused(codecs.BOM_UTF16_BE + VALID.decode().encode("utf-16-be")).reason
    assert "unknown encoding 'klingon'" in refused(b'<?xml version="1.0" encoding="klingon"?>' + VALID).reason
    assert "unknown encoding 'base64'" in refused(b'<?xml version="1.0" encoding="base64"?>' + VALID).reason
    wide = refused(b'<?xml version="1.0" encoding="UTF-16"?>' + VALID)
    assert "says UTF-16, but the file is 8-bit text" in wide.reason and wide.line == 1


def test_the_sha256_is_of_the_file_bytes():
    import hashlib

    assert load_config(VALID).sha256 == hashlib.sha256(VALID).hexdigest()


def test_path_or_bytes_give_the_same_configuration():
    from_path = load_config(CONFIGS / "main.xml")
    from_bytes = load_config((CONFIGS / "main.xml").read_bytes(), path=str(CONFIGS / "main.xml"))
    assert from_path == from_bytes
    assert from_path.path == str(CONFIGS / "main.xml")


# The structure Sysmon accepts; refusals name what is valid.


def test_unknown_event_type_lists_the_valid_ones():
    error = refused(
        '<Sysmon schemaversion="4.90"><EventFiltering>\n<ProcessCreated onmatch="include"/></EventFiltering></Sysmon>'
    )
    assert "unknown event type <ProcessCreated>" in error.reason
    assert "ProcessCreate, " in error.reason and "FileDelete" in error.reason
    assert error.line == 2


def test_unknown_field_lists_the_fields_of_the_event():
    error = refused('<Sysmon schemaversion="4.90"><EventFiltering><ProcessTerminate onmatch="include">\n'
                    "<CommandLine>x</CommandLine></ProcessTerminate></EventFiltering></Sysmon>")  # fmt: skip
    assert "<ProcessTerminate> has no field <CommandLine>" in error.reason
    assert "RuleName, UtcTime, ProcessGuid, ProcessId, Image, User" in error.reason
    assert error.line == 2


def test_field_names_are_case_sensitive():
    error = refused('<Sysmon schemaversion="4.90"><EventFiltering><ProcessCreate onmatch="include">'
                    "<image>x</image></ProcessCreate></EventFiltering></Sysmon>")  # fmt: skip
    assert "no field <image>" in error.reason


def test_unknown_condition_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="unknown condition 'ends with' on <Image>; valid: is, is not, contains") as e:
        config('<ProcessCreate onmatch="include"><Image condition="ends with">x</Image></ProcessCreate>')
    assert "image" in e.value.reason


@pytest.mark.parametrize(
    ("filtering", "message"),
    [
        ('<ProcessCreate onmatch="include"><Image condtion="is">x</Image></ProcessCreate>',
         "<Image> has no attribute 'condtion' (valid: condition, name)"),
        ("<ProcessCreate><Image>x</Image></ProcessCreate>", "needs an onmatch attribute"),
        ('<ProcessCreate onmatch="include" default="include"/>', "needs an onmatch attribute"),
        ('<ProcessCreate onmatch="log"/>', "onmatch must be include or exclude, not 'log'"),
        ('<RuleGroup groupRelation="xor"><ProcessCreate onmatch="include"/></RuleGroup>', "groupRelation must be and or or"),
        ('<RuleGroup><ProcessCreate onmatch="include"/><FileCreate onmatch="include"/></RuleGroup>',
         "holds exactly one event element, this one holds 2"),
        ('<RuleGroup groupRelation="or"/>', "holds exactly one event element, this one holds 0"),
        ('<ProcessCreate onmatch="include"><Rule><Rule/></Rule></ProcessCreate>', "cannot hold another <Rule>"),
        ('<ProcessCreate onmatch="include"><Image>a<b/></Image></ProcessCreate>', "only text belongs there"),
        ('<ProcessCreate onmatch="include">stray text</ProcessCreate>', "holds text; only elements belong there"),
        ('<RuleGroup><Rule/></RuleGroup>', "unknown event type <Rule>"),
    ],
)  # fmt: skip
def test_structure_sysmon_refuses(filtering, message):
    with pytest.raises(ConfigError, match=None) as error:
        config(filtering)
    assert message in error.value.reason
    assert error.value.line == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('<sysmon schemaversion="4.90"/>', "root element must be <Sysmon>, not <sysmon>"),
        ("<Sysmon/>", "needs a schemaversion attribute"),
        ('<Sysmon schemaversion="5.0"/>', "reads schema 4.x"),
        ('<Sysmon schemaversion="3.50"/>', "reads schema 4.x"),
        ('<Sysmon schemaversion="four"/>', "reads schema 4.x"),
        ('<Sysmon schemaversion="4.91"/>', "newer than the newest known (4.90"),
        ('<Sysmon schemaversion="4.90" version="1"/>', "no attribute 'version'"),
        ('<Sysmon schemaversion="4.90"><Filtering/></Sysmon>', "unknown element <Filtering> in <Sysmon>; valid: EventFiltering, HashAlgorithms"),
        ('<Sysmon schemaversion="4.90"><CaptureClipboard>yes</CaptureClipboard></Sysmon>', "<CaptureClipboard> takes no value"),
        ('<Sysmon xmlns="urn:x" schemaversion="4.90"/>', "root element must be <Sysmon>"),
    ],
)  # fmt: skip
def test_root_sysmon_refuses(text, message):
    assert message in refused(text).reason


def test_schema_version_is_kept_as_written():
    assert load_config(b'<Sysmon schemaversion=" 4.9x"/>').schema_version == " 4.9x"  # read as C reads 4.9


def test_comments_and_processing_instructions_are_skipped():
    cfg = load_config(
        b'<?xml version="1.0"?><!-- c --><Sysmon schemaversion="4.90"><!-- c --><EventFiltering><!-- c -->'
        b'<ProcessCreate onmatch="include"><?pi x?><Image condition="end with">/w<!-- c -->get</Image>'
        b"</ProcessCreate></EventFiltering></Sysmon>"
    )
    assert cfg.decide(1, fields(1, Image="/usr/bin/wget")) == "-"
    assert cfg.rules[1][0].items[0].value == "/wget"


def test_cdata_and_character_references_are_text():
    cfg = config(
        '<ProcessCreate onmatch="include"><Image condition="end with"><![CDATA[/a&b]]>&#x2F;c</Image></ProcessCreate>'
    )
    assert cfg.rules[1][0].filters[0].value == "/a&b/c"


# Warnings: accepted but without effect on converted audit logs.


def test_options_without_effect_are_accepted_with_a_warning():
    cfg = config(
        "",
        options="<ArchiveDirectory>archive</ArchiveDirectory><CheckRevocation>false</CheckRevocation>"
        "<DnsLookup>False</DnsLookup><DriverName>SysmonDrv</DriverName>",
    )
    assert cfg.warnings == tuple(
        f"<{name}> accepted, has no effect on converted audit logs"
        for name in ("ArchiveDirectory", "CheckRevocation", "DnsLookup", "DriverName")
    )


def test_windows_event_types_are_accepted_with_a_warning():
    cfg = config(
        '<RuleGroup groupRelation="or"><DnsQuery onmatch="exclude"><QueryName condition="end with">.local</QueryName>'
        '</DnsQuery></RuleGroup><RegistryEvent onmatch="include"><Details>x</Details></RegistryEvent>'
    )
    assert cfg.warnings == (
        "<DnsQuery> rules accepted; Sysmon for Linux never writes DnsQuery events",
        "<RegistryEvent> rules accepted; Sysmon for Linux never writes RegistryEvent events",
    )
    assert [s.event_id for s in cfg.rules[22]] == [22]
    assert [s.event_id for s in cfg.rules[13]] == [13]  # Details: the registry value-set event


def test_an_option_without_value_stops_sysmon_reading_options():
    cfg = config("", options="<HashAlgorithms>md5</HashAlgorithms><CaptureClipboard/><HashAlgorithms>sha1</HashAlgorithms>"
                             "<FieldSizes>Image:10</FieldSizes>")  # fmt: skip
    assert cfg.hash_algorithms == ("MD5",)
    assert cfg.field_sizes == {}
    assert (
        "<HashAlgorithms> (line 1) is ignored, as Sysmon ignores every option after <CaptureClipboard>"
        in cfg.warnings[1]
    )


def test_a_rule_relation_other_than_and_or_is_and_with_a_warning():
    cfg = config('<ProcessCreate onmatch="include"><Rule groupRelation="both"><Image>/a</Image><User>root</User></Rule>'
                 "</ProcessCreate>")  # fmt: skip
    assert cfg.decide(1, fields(1, Image="/a", User="bob")) is None
    assert cfg.decide(1, fields(1, Image="/a", User="root")) == "-"
    assert cfg.warnings == ("line 1: <Rule groupRelation='both'> is taken as and, as Sysmon takes it",)


def test_relations_and_onmatch_ignore_ascii_case():
    cfg = config('<RuleGroup groupRelation="OR"><ProcessCreate onmatch="Include"><Image>/a</Image><User>root</User>'
                 "</ProcessCreate></RuleGroup>")  # fmt: skip
    assert cfg.decide(1, fields(1, Image="/a", User="bob")) == "-"
