"""Agent forwarding is refused (asyncssh would allow it by default), and a client that asks for
it, as `ssh -A` or a forwarding paramiko script does, still gets its SFTP session."""

from __future__ import annotations

import asyncio
import io

import paramiko
from paramiko.common import cMSG_CHANNEL_REQUEST
from sftp_fixtures import SftpEnv, connect

AGENT_REQUEST = "auth-agent-req@openssh.com"


def granted(channel: paramiko.Channel, request: str) -> bool:
    """Send a channel request that wants an answer: the server's answer.

    OpenSSH and paramiko ask for agent forwarding without wanting one, so the server's answer
    is only seen this way; paramiko closes the channel on a refusal, as for its own requests.
    """
    message = paramiko.Message()
    message.add_byte(cMSG_CHANNEL_REQUEST)
    message.add_int(channel.remote_chanid)
    message.add_string(request)
    message.add_boolean(True)
    channel._event_pending()
    channel.get_transport()._send_user_message(message)
    try:
        channel._wait_for_event()
    except paramiko.SSHException:
        return False
    return True


def forward_agent_then_sftp(port: int) -> tuple[bool, list[str], bytes, list[paramiko.Channel]]:
    """Ask for the agent twice, then use SFTP on the channel that asked paramiko's way."""
    agent_channels: list[paramiko.Channel] = []  # what the server would open to use our agent
    transport = connect(port)
    try:
        answer = granted(transport.open_session(), AGENT_REQUEST)

        channel = transport.open_session()
        channel.request_forward_agent(agent_channels.append)  # what AgentRequestHandler does
        channel.invoke_subsystem("sftp")
        sftp = paramiko.SFTPClient(channel)
        sftp.putfo(io.BytesIO(b"school_id,school_name\r\n"), "/upload/schools.csv")
        with sftp.open("/upload/schools.csv", "rb") as handle:
            read_back = handle.read()
        listing = sftp.listdir("/upload")
        sftp.close()
        return answer, listing, read_back, agent_channels
    finally:
        transport.close()


async def test_agent_forwarding_is_refused_and_sftp_still_works(sftp_env: SftpEnv) -> None:
    answer, listing, read_back, agent_channels = await asyncio.to_thread(
        forward_agent_then_sftp, sftp_env.port
    )

    assert answer is False, "the server granted agent forwarding"
    assert listing == ["schools.csv"]
    assert read_back == b"school_id,school_name\r\n"
    assert agent_channels == []
    assert sftp_env.disk() == {"schools.csv": b"school_id,school_name\r\n"}
