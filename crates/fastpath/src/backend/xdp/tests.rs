use super::*;

#[test]
fn sockets_and_ports_move_between_threads() {
    fn assert_send<T: Send>() {}
    assert_send::<XskSocket>();
    assert_send::<XdpPort>();
}
