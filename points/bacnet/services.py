"""BACnet services as ANSI/ASHRAE 135 says, where bacpypes3 0.0.110 does otherwise (issue 14).

bacpypes3 answers a WritePropertyMultiple with one failing write with nothing (it raises its
error PDU instead of sending it), rejects a value of the wrong datatype (invalid-tag) instead of
the error INVALID_DATA_TYPE (15.9.1.3.1), answers an unknown property with operational-problem,
serves a Network Port object without Network_Number, MAC_Address and APDU_Length (12.56) and with
an empty FD_BBMD_Address that fails a read of ALL, and handles ReadRange, which none of our
objects supports. The application's service methods are replaced on the instance BAC0 builds.
"""

from __future__ import annotations

import ipaddress
import logging
import types
from typing import Any

from bacpypes3.apdu import SimpleAckPDU, WritePropertyMultipleError
from bacpypes3.basetypes import ErrorType, ObjectPropertyReference
from bacpypes3.constructeddata import Array
from bacpypes3.errors import ExecutionError
from bacpypes3.ipv4 import IPv4DatagramServer
from bacpypes3.primitivedata import Unsigned

from points.peer_log import PeerLog

log = logging.getLogger("points.bacnet.device")
WILDCARD_DEVICE = ("device", 4194303)
APDU_LENGTH = 1476  # BACnet/IP (Annex J): the largest APDU on an Ethernet MTU


def _quiet_datagram_errors() -> None:
    """bacpypes3 logs a traceback for every datagram it cannot decode (IPv4DatagramServer.
    confirmation); log one line per peer and minute instead (issue 14 item 11)."""
    if getattr(IPv4DatagramServer.confirmation, "_gateway", False):
        return

    async def confirmation(self: Any, pdu: Any) -> None:
        if pdu.pduSource.addrTuple == self.local_address:
            return  # our own broadcast, reflected
        try:
            await self.response(pdu)
        except Exception as err:  # a datagram this stack cannot decode: the peer's fault
            peers = self.__dict__.setdefault("_gw_malformed", PeerLog(log))  # per device
            host = str(pdu.pduSource).rsplit(":", 1)[0]
            peers.warn(f"BACnet peer {host}", f"malformed datagram dropped: {err!r}")

    confirmation._gateway = True  # type: ignore[attr-defined]
    IPv4DatagramServer.confirmation = confirmation  # type: ignore[method-assign]


def install(app: Any, address: str, port: int, bbmd: bool) -> None:
    """Fix the services and the network port of a running bacpypes3 application."""
    _quiet_datagram_errors()
    app.do_WritePropertyRequest = types.MethodType(_write_property, app)
    app.do_WritePropertyMultipleRequest = types.MethodType(_write_property_multiple, app)
    app.do_ReadRangeRequest = None  # not offered: answered with reject unrecognized-service
    for obj in list(app.objectIdentifier.values()):
        if str(obj.objectIdentifier[0]) == "network-port":
            _complete_network_port(obj, address, port, bbmd)


async def write_one(obj: Any, prop: Any, value: Any, index: int | None, priority: int | None) -> None:
    """One property write with the standard's errors (15.9.1.3.1)."""
    property_type = obj.get_property_type(prop)
    if property_type is None:
        raise ExecutionError("property", "unknownProperty")
    if issubclass(property_type, Array) and index is not None:
        property_type = Unsigned if index == 0 else property_type._subtype
    try:
        decoded = value.cast_out(property_type, null=(priority is not None))
    except Exception:  # bacpypes3 raises a reject (invalid-tag), TypeError or ValueError
        raise ExecutionError("property", "invalidDataType") from None
    try:
        await obj.write_property(prop, decoded, index, priority)
    except AttributeError:  # bacpypes3: "not a property"
        raise ExecutionError("property", "unknownProperty") from None
    except (TypeError, ValueError):
        raise ExecutionError("property", "invalidDataType") from None


async def _write_property(self: Any, apdu: Any) -> None:
    obj = self.get_object_id(apdu.objectIdentifier)
    if not obj:
        raise ExecutionError("object", "unknownObject")
    await write_one(obj, apdu.propertyIdentifier, apdu.propertyValue, apdu.propertyArrayIndex, apdu.priority)
    await self.response(SimpleAckPDU(context=apdu))


async def _write_property_multiple(self: Any, apdu: Any) -> None:
    """Writes in order; the first failure ends the request with its object and property
    (15.10.1.3.1: the writes before it stay applied)."""
    for spec in apdu.listOfWriteAccessSpecs:
        object_id = spec.objectIdentifier
        if object_id == WILDCARD_DEVICE and self.device_object is not None:
            object_id = self.device_object.objectIdentifier
        obj = self.get_object_id(object_id)
        if not obj:
            await self.response(_wpm_error(apdu, "object", "unknownObject", object_id, None, None))
            return
        for item in spec.listOfProperties:
            try:
                await write_one(obj, item.propertyIdentifier, item.value, item.propertyArrayIndex, item.priority)
            except ExecutionError as err:
                await self.response(_wpm_error(apdu, err.errorClass, err.errorCode, object_id,
                                               item.propertyIdentifier, item.propertyArrayIndex))
                return
    await self.response(SimpleAckPDU(context=apdu))


def _wpm_error(apdu: Any, error_class: Any, error_code: Any, object_id: Any, prop: Any,
               index: int | None) -> WritePropertyMultipleError:
    failed = ObjectPropertyReference(objectIdentifier=object_id)
    if prop is not None:
        failed.propertyIdentifier = prop
    if index is not None:
        failed.propertyArrayIndex = index
    return WritePropertyMultipleError(errorType=ErrorType(errorClass=error_class, errorCode=error_code),
                                      firstFailedWriteAttempt=failed, context=apdu)


def _complete_network_port(obj: Any, address: str, port: int, bbmd: bool) -> None:
    """The required properties of a BACnet/IP network port (12.56), so ALL reads completely."""
    host = ipaddress.ip_interface(address).ip
    obj.networkNumber = 0  # the local network, number not configured
    obj.networkNumberQuality = "unknown"
    obj.macAddress = host.packed + port.to_bytes(2, "big")  # B/IP MAC: address and UDP port (J.1.2)
    obj.apduLength = APDU_LENGTH
    if not bbmd and getattr(obj, "fdBBMDAddress", None) is not None and not obj.fdBBMDAddress.host:
        delattr(obj, "fdBBMDAddress")  # not a foreign device: BAC0's empty address fails to encode
